package controllers

import (
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// TestOwnerUnlabelled: a manifest is relabelled only when it has an object
// the post-renderer labels and none carries the label, so the one upgrade
// that labels it is not repeated (an empty List has nothing to label).
func TestOwnerUnlabelled(t *testing.T) {
	const src = "---\n# Source: hello/templates/x.yaml\n"
	for name, tc := range map[string]struct {
		manifest string
		want     bool
	}{
		"an object without the label":    {src + "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n", true},
		"an object with the label":       {src + "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels:\n    " + chartproofv1.LabelOwner + ": u\n", false},
		"a list with an unlabelled item": {src + "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: a\n", true},
		"an empty list":                  {src + "apiVersion: v1\nkind: List\nitems: []\n", false},
		"no object":                      {src, false},
		"nothing":                        {"", false},
	} {
		if got := ownerUnlabelled(tc.manifest); got != tc.want {
			t.Errorf("%s: ownerUnlabelled = %v; want %v", name, got, tc.want)
		}
	}
}
