package identity

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestWritesTransport: what a successful create or update answers with is
// remembered (the object is then exactly what was sent); a patch (it merges
// into what is there, and may change nothing), a dry run, a read, a refusal
// and an answer neither JSON nor Kubernetes protobuf are not; a write is
// forgotten after the TTL. The callers read the whole answer as the server
// sent it. (controllers.TestOwnWritesRemembered checks the same on the real
// API server, through Helm and the drift client.)
func TestWritesTransport(t *testing.T) {
	const object = `{"kind":"ConfigMap","metadata":{"uid":"u-1","resourceVersion":"42"}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/refused":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
		case "/cbor":
			w.Header().Set("Content-Type", "application/cbor")
		case "/protobuf":
			// Not the "k8s\x00" envelope of Kubernetes protobuf.
			w.Header().Set("Content-Type", "application/vnd.kubernetes.protobuf")
		default:
			w.Header().Set("Content-Type", "application/json")
		}
		_, _ = io.WriteString(w, object)
	}))
	defer srv.Close()

	const from41 = `{"metadata":{"uid":"u-1","resourceVersion":"41"}}`
	const at42 = `{"metadata":{"uid":"u-1","resourceVersion":"42"}}`
	tests := []struct {
		name, method, path, body string
		remembered               bool
	}{
		{"create", http.MethodPost, "/api", "{}", true},
		{"update", http.MethodPut, "/api", from41, true},
		{"update that changed nothing: the object is what was sent", http.MethodPut, "/api", at42, true},
		{"patch (may change nothing)", http.MethodPatch, "/api", "{}", false},
		{"dry run", http.MethodPost, "/api?dryRun=All", "{}", false},
		{"read", http.MethodGet, "/api", "", false},
		{"delete", http.MethodDelete, "/api", "", false},
		{"refused", http.MethodPost, "/refused", "{}", false},
		{"CBOR", http.MethodPost, "/cbor", "{}", false},
		{"not Kubernetes protobuf", http.MethodPost, "/protobuf", "{}", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWrites(time.Minute)
			now := time.Unix(1000, 0)
			w.now = func() time.Time { return now }
			client := &http.Client{Transport: w.wrap(http.DefaultTransport)}
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(body) != object {
				t.Fatalf("the caller read %q, %v; want the server's answer", body, err)
			}
			if got := w.Ours("u-1", "42"); got != tc.remembered {
				t.Fatalf("Ours = %v; want %v", got, tc.remembered)
			}
			if w.Ours("u-1", "43") || w.Ours("u-2", "42") {
				t.Error("another version or object is remembered")
			}
			now = now.Add(time.Minute)
			if w.Ours("u-1", "42") {
				t.Error("remembered after the TTL")
			}
		})
	}
	var none *Writes
	if none.Ours("u-1", "42") {
		t.Error("a nil Writes remembers")
	}
}

// TestWritesSettling: while a write to a namespace is under way, events
// there may be its echo before its answer is read (Settling); before and
// after it, and in other namespaces, they may not.
func TestWritesSettling(t *testing.T) {
	w := NewWrites(time.Minute)
	var during, elsewhere bool
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		during, elsewhere = w.Settling("team-a"), w.Settling("team-b")
		rw.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(rw, `{"metadata":{"uid":"u-1","resourceVersion":"7"}}`)
	}))
	defer srv.Close()
	if w.Settling("team-a") {
		t.Fatal("settling before any write")
	}
	client := &http.Client{Transport: w.wrap(http.DefaultTransport)}
	resp, err := client.Post(srv.URL+"/api/v1/namespaces/team-a/configmaps", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !during || elsewhere {
		t.Errorf("during the write: settling in its namespace %v, in another %v; want true, false", during, elsewhere)
	}
	if w.Settling("team-a") || !w.Ours("u-1", "7") {
		t.Errorf("after the write: settling %v, remembered %v; want false, true", w.Settling("team-a"), w.Ours("u-1", "7"))
	}
}

func TestNamespaceOf(t *testing.T) {
	for path, want := range map[string]string{
		"/api/v1/namespaces/team-a/secrets":                   "team-a",
		"/api/v1/namespaces/team-a/secrets/s":                 "team-a",
		"/apis/apps/v1/namespaces/team-a/deployments/d":       "team-a",
		"/apis/apps/v1/namespaces/team-a/deployments/d/scale": "team-a",
		"/api/v1/namespaces":                                  "",
		"/api/v1/namespaces/team-a":                           "", // the Namespace object, cluster-scoped
		"/apis/rbac.authorization.k8s.io/v1/clusterroles":     "",
		"/apis/example.com/v1/namespaces":                     "",
	} {
		if got := namespaceOf(path); got != want {
			t.Errorf("namespaceOf(%q) = %q; want %q", path, got, want)
		}
	}
}
