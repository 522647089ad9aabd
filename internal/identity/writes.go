package identity

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// Writes remembers, for a while, the objects that releases' own requests
// wrote: the UID and resourceVersion the API server answered each create or
// update with, at which the object is exactly what chartproof sent. A watch
// event that reports an object at one of them is the echo of chartproof's
// own write (a Helm install, the records Helm keeps, a correction's update),
// not a change by anyone else.
//
// Only the API server assigns resourceVersions, so nobody else's write can
// look like one of these. A patch is not remembered: it merges into what is
// there, and one that changes nothing answers with the version whoever
// wrote last made. Nor are dry runs, deletions and answers neither JSON nor
// protobuf: their events wake releases as any other does. Writes does not
// know which release wrote: callers that map an event to releases check
// that the object is that release's (its owner label).
type Writes struct {
	ttl time.Duration
	now func() time.Time

	mu       sync.Mutex
	seen     map[string]time.Time // "uid/resourceVersion": when written
	pruned   time.Time
	inflight map[string]int // writes under way, by namespace ("" for cluster-scoped)
}

// DefaultWritesTTL is how long the manager remembers a write of its own:
// far longer than a watch event takes to arrive.
const DefaultWritesTTL = 2 * time.Minute

// NewWrites returns a Writes that forgets a write after ttl: a watch event
// later than that wakes its release even for a write of chartproof's own.
func NewWrites(ttl time.Duration) *Writes {
	return &Writes{ttl: ttl, now: time.Now, seen: map[string]time.Time{}, inflight: map[string]int{}}
}

// Ours reports whether a release's own request wrote the object uid at
// resourceVersion rv. A nil Writes remembers nothing.
func (w *Writes) Ours(uid types.UID, rv string) bool {
	if w == nil || uid == "" || rv == "" {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	at, ok := w.seen[string(uid)+"/"+rv]
	return ok && w.now().Sub(at) < w.ttl
}

// Settling reports whether a create or update of a release's account in
// namespace ("" for cluster-scoped objects) is under way: a watch event
// there that Ours does not know yet may be the echo of a write whose answer
// has not been read. The API server may send the watch event before the
// answer.
func (w *Writes) Settling(namespace string) bool {
	if w == nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.inflight[namespace] > 0
}

func (w *Writes) begin(namespace string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inflight[namespace]++
}

func (w *Writes) end(namespace string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inflight[namespace]--; w.inflight[namespace] <= 0 {
		delete(w.inflight, namespace)
	}
}

func (w *Writes) add(uid, rv string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	if now.Sub(w.pruned) >= w.ttl {
		for k, at := range w.seen {
			if now.Sub(at) >= w.ttl {
				delete(w.seen, k)
			}
		}
		w.pruned = now
	}
	w.seen[uid+"/"+rv] = now
}

// wrap returns rt, remembering in w what each successful write answers.
func (w *Writes) wrap(rt http.RoundTripper) http.RoundTripper {
	return writesTransport{next: rt, writes: w}
}

type writesTransport struct {
	next   http.RoundTripper
	writes *Writes
}

func (t writesTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !remembered(req) {
		return t.next.RoundTrip(req)
	}
	// Under way until what it wrote is remembered.
	namespace := namespaceOf(req.URL.Path)
	t.writes.begin(namespace)
	defer t.writes.end(namespace)
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode/100 != 2 {
		return resp, err
	}
	contentType := resp.Header.Get("Content-Type")
	if !strings.HasPrefix(contentType, runtime.ContentTypeJSON) && !strings.HasPrefix(contentType, runtime.ContentTypeProtobuf) {
		return resp, nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	meta, ok := answeredMetadata(contentType, body)
	if ok && meta.UID != "" && meta.ResourceVersion != "" {
		t.writes.add(string(meta.UID), meta.ResourceVersion)
	}
	return resp, nil
}

// answeredMetadata decodes the metadata of the object an API server
// answered with, as JSON or as Kubernetes protobuf (client-go's typed
// clients ask for it): the "k8s\x00" envelope around a runtime.Unknown whose raw message has
// the object's metadata as field 1, as every object's has, which is how
// metav1.PartialObjectMetadata reads it.
func answeredMetadata(contentType string, body []byte) (metav1.ObjectMeta, bool) {
	if strings.HasPrefix(contentType, runtime.ContentTypeJSON) {
		var answer metav1.PartialObjectMetadata
		if json.Unmarshal(body, &answer) != nil {
			return metav1.ObjectMeta{}, false
		}
		return answer.ObjectMeta, true
	}
	raw, ok := bytes.CutPrefix(body, []byte("k8s\x00"))
	if !ok {
		return metav1.ObjectMeta{}, false
	}
	var unknown runtime.Unknown
	if unknown.Unmarshal(raw) != nil {
		return metav1.ObjectMeta{}, false
	}
	var answer metav1.PartialObjectMetadata
	if answer.Unmarshal(unknown.Raw) != nil {
		return metav1.ObjectMeta{}, false
	}
	return answer.ObjectMeta, true
}

// remembered reports whether what req writes is remembered: a create or an
// update, not a dry run. At the version either answers with, the object is
// exactly what chartproof sent (an update replaces the whole object; one
// that changed nothing found it as sent). A patch merges into whatever is
// there, someone else's fields included, and one that changes nothing
// answers with the version whoever wrote last made: never taken as
// chartproof's, nor waited for (Settling).
func remembered(req *http.Request) bool {
	return (req.Method == http.MethodPost || req.Method == http.MethodPut) && req.URL.Query().Get("dryRun") == ""
}

// namespaceOf is the namespace of an API path (/api/v1/namespaces/NS/...,
// /apis/GROUP/VERSION/namespaces/NS/...), "" for a cluster-scoped one.
func namespaceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := 0; i+2 < len(parts); i++ {
		if parts[i] == "namespaces" && (i == 2 || i == 3) {
			return parts[i+1]
		}
	}
	return ""
}
