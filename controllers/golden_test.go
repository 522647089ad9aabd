package controllers_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// checkGolden renders the release's status conditions, evidence and events,
// with what changes from run to run replaced by placeholders, and compares
// them with testdata/golden/<name>.yaml. An installed release is rendered
// once its first drift check (run right after the install) is in status, so
// the golden never depends on timing.
func (f *fixture) checkGolden(releaseName, golden string) {
	f.t.Helper()
	vhr := f.get(releaseName)
	if vhr.Status.Installed != nil {
		vhr = f.waitCondition(releaseName, chartproofv1.ConditionDrifted, metav1.ConditionFalse, chartproofv1.ReasonNoDrift)
	}
	type cond struct{ Type, Status, Reason, Message string }
	type event struct{ Type, Reason, Note string }
	out := struct {
		Wide           []string
		Conditions     []cond
		Evidence       []string
		ResolvedDigest string
		Installed      string
		Events         []event
	}{Wide: f.wide(releaseName), ResolvedDigest: vhr.Status.ResolvedDigest}
	for _, c := range vhr.Status.Conditions {
		out.Conditions = append(out.Conditions, cond{c.Type, string(c.Status), c.Reason, retryIn.ReplaceAllString(c.Message, "verified again in DURATION")})
	}
	sort.Slice(out.Conditions, func(i, j int) bool { return out.Conditions[i].Type < out.Conditions[j].Type })
	for _, e := range vhr.Status.Evidence {
		line := fmt.Sprintf("%s %s %s", e.Authority, e.Layout, e.KeyID)
		if e.Subject != "" {
			line += fmt.Sprintf(" signer %s issuer %s", e.Subject, e.Issuer)
		}
		if e.LogIndex != nil {
			line += fmt.Sprintf(" log index %d", *e.LogIndex)
		}
		if e.SignedAt != nil {
			line += " signedAt SIGNEDAT"
		}
		out.Evidence = append(out.Evidence, strings.TrimSpace(line))
	}
	if i := vhr.Status.Installed; i != nil {
		out.Installed = fmt.Sprintf("%s %s revision %d verified %v", i.Digest, i.ChartVersion, i.Revision, i.Verified)
	}
	var evs eventsv1.EventList
	if err := k8s.List(context.Background(), &evs, client.InNamespace(f.ns)); err != nil {
		f.t.Fatal(err)
	}
	seen := map[event]bool{}
	for _, e := range evs.Items {
		ev := event{e.Type, e.Reason, e.Note}
		if e.Regarding.Name == releaseName && !seen[ev] {
			seen[ev] = true
			out.Events = append(out.Events, ev)
		}
	}
	sort.Slice(out.Events, func(i, j int) bool {
		return out.Events[i].Reason+out.Events[i].Note < out.Events[j].Reason+out.Events[j].Note
	})
	b, err := yaml.Marshal(out)
	if err != nil {
		f.t.Fatal(err)
	}
	got := f.normalize(string(b))
	path := filepath.Join("testdata", "golden", golden+".yaml")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			f.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			f.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		f.t.Fatalf("%v (run `go test ./controllers -update` to create it)", err)
	}
	if got != string(want) {
		f.t.Errorf("status and events differ from %s (run with -update after checking):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// wide is the release's row as `kubectl get vhr -o wide` prints it (the
// API server's Table of the CRD's printer columns), COLUMN=value, Age left
// out.
func (f *fixture) wide(name string) []string {
	f.t.Helper()
	cs, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		f.t.Fatal(err)
	}
	gv := chartproofv1.GroupVersion
	raw, err := cs.RESTClient().Get().AbsPath("/apis", gv.Group, gv.Version, "namespaces", f.ns, "verifiedhelmreleases", name).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	var table metav1.Table
	if err := json.Unmarshal(raw, &table); err != nil {
		f.t.Fatal(err)
	}
	if len(table.Rows) != 1 || len(table.Rows[0].Cells) != len(table.ColumnDefinitions) {
		f.t.Fatalf("table of %s: %d rows, want 1 with a cell per column", name, len(table.Rows))
	}
	var cells []string
	for i, c := range table.ColumnDefinitions {
		if c.Name == "Age" {
			continue
		}
		v := table.Rows[0].Cells[i]
		if v == nil {
			v = "<none>" // as kubectl prints a missing field
		}
		cell := retryIn.ReplaceAllString(fmt.Sprint(v), "verified again in DURATION")
		cells = append(cells, strings.ToUpper(c.Name)+"="+cell)
	}
	return cells
}

var (
	hex64     = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	timestamp = regexp.MustCompile(`\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\b`)
	// retryIn is when a chart without a signature is verified again: it
	// grows with the time waited so far (replaced before the YAML is
	// written, so that its length never moves a line break).
	retryIn = regexp.MustCompile(`verified again in [0-9hms]+`)
)

// normalize replaces the registry address, the namespace and key IDs (new
// keys each run). Chart digests stay: test charts are byte-for-byte stable.
func (f *fixture) normalize(s string) string {
	s = strings.ReplaceAll(s, regHost, "REGISTRY")
	s = strings.ReplaceAll(s, f.ns, "NAMESPACE")
	s = timestamp.ReplaceAllString(s, "TIME")
	s = hex64.ReplaceAllStringFunc(s, func(h string) string {
		if strings.Contains(s, "sha256:"+h) {
			return h // a digest
		}
		return "KEYID"
	})
	return s
}
