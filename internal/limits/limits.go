// Package limits holds the caps on every untrusted input chartproof reads:
// registry responses, signature artifacts, chart archives and policy files.
// They live in one place so a reviewer can see them all at once, and so the
// controller and the CLI apply the same ones.
package limits

const (
	// MaxManifestBytes caps an OCI manifest or index body.
	MaxManifestBytes = 4 << 20
	// MaxChartLayerBytes caps the compressed chart archive blob.
	MaxChartLayerBytes = 20 << 20
	// MaxConfigBytes caps the Helm config blob of a chart manifest.
	MaxConfigBytes = 1 << 20
	// MaxSignatureLayerBytes caps one signature blob: a simple-signing
	// payload or a Sigstore bundle.
	MaxSignatureLayerBytes = 1 << 20
	// MaxSignatureAnnotationBytes caps one annotation of a legacy signature
	// layer that chartproof reads: the signature, the certificate, the
	// chain, the Rekor bundle, the RFC 3161 timestamp. Each is a few KiB
	// from cosign; the manifest holding them is capped by MaxManifestBytes.
	MaxSignatureAnnotationBytes = 64 << 10
	// MaxStatementSubjects caps the subjects of a signed in-toto statement,
	// and MaxSubjectDigests the digests of one subject, as sigstore-go caps
	// them where it reads statements (THREATS DOS-02). sigstore-go itself
	// caps a bundle's log entries and RFC 3161 timestamps at 32 each.
	MaxStatementSubjects = 1024
	MaxSubjectDigests    = 32
	// MaxLegacySignatures caps the layers of a digest's legacy signature
	// manifest (the cosign "sha256-<hex>.sig" tag) that are examined, and
	// MaxReferrers the signature referrers of a digest: each layout has its
	// own budget, so a flood in one cannot hide a signature in the other.
	// Referrers that are not signatures (attestations, other artifact
	// types) are dropped from a listing before it is capped. The rest are
	// ignored (docs/security.md, "Caps on untrusted input").
	MaxLegacySignatures = 256
	MaxReferrers        = 256
	// MaxSignatureChecks caps, per layout, the signatures that reach
	// cryptographic verification, counted apart from the listing caps:
	// duplicates and signatures that cheap checks rule out (a layer of
	// another media type, a certificate naming no trusted identity) do not
	// count.
	MaxSignatureChecks = 128
	// MaxSignatures caps the signatures a verdict weighs: both layouts.
	MaxSignatures = MaxLegacySignatures + MaxReferrers
	// MaxTagListPages caps the pages followed when listing tags or
	// referrers; a registry whose Link headers loop stops here.
	MaxTagListPages = 100
	// MaxTags caps the tags considered when resolving a semver range.
	MaxTags = 10000
	// MaxTagListBytes caps one page of a registry's tag listing.
	MaxTagListBytes = 4 << 20
	// MaxProvenanceBytes caps the Helm provenance (.prov) layer of a chart
	// manifest.
	MaxProvenanceBytes = 1 << 20
	// MaxErrorBodyBytes caps how much of a registry error body is read.
	MaxErrorBodyBytes = 4 << 10

	// MaxChartFiles caps the entries of a chart archive.
	MaxChartFiles = 5000
	// MaxChartFileBytes caps one decompressed file of a chart archive.
	MaxChartFileBytes = 5 << 20
	// MaxChartBytes caps the decompressed size of a whole chart archive.
	MaxChartBytes = 100 << 20
	// MaxChartPathBytes caps the length of one path in a chart archive.
	MaxChartPathBytes = 1024
	// MaxChartDepth caps how deeply subcharts nest in a chart archive,
	// counting charts/<name>/ directories and vendored charts/<name>.tgz
	// archives alike; the top-level chart is at depth 0.
	MaxChartDepth = 10
	// MaxYAMLAliases caps the aliases (*name) in one YAML file of a chart
	// that Helm parses itself: Chart.yaml, Chart.lock, values.yaml,
	// requirements.yaml/.lock and crds/.
	MaxYAMLAliases = 100
	// MaxYAMLAliasNodes caps the nodes the aliases of one such file add
	// once expanded. Counting aliases is not enough: nine levels of nine
	// aliases each stand for 9^9 nodes.
	MaxYAMLAliasNodes = 10000

	// MaxPolicyFileBytes caps a policy file read by `chartproof verify`.
	MaxPolicyFileBytes = 1 << 20
	// MaxValuesBytes caps the values read from one ConfigMap or Secret key.
	MaxValuesBytes = 1 << 20
	// MaxHealthExprCost caps the work of one evaluation of a
	// spec.healthCheckExprs expression, in CEL's cost units (the API
	// server's own limit per expression).
	MaxHealthExprCost = 1000000
)
