package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/ext"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// MaxConditionCost bounds what one attestation condition may cost, in CEL's
// cost units (about one per operation): its worst case, estimated when the
// policy is compiled for a predicate as large as an attestation may be
// (MaxAttestationBytes), and what one evaluation may spend, checked as it
// runs. A condition that scans a list of the largest predicate once fits;
// one that scans it once per element does not.
const MaxConditionCost = 10_000_000

// MaxAttestations and MaxAttestationAuthorities bound spec.attestations and
// the authorities of each, as the CRD does. MaxConditionRuns bounds the
// evaluations of one condition in one verdict: a condition runs only on
// attestations whose signer counts, the first of them for which it is
// true holds.
const (
	MaxAttestations           = 8
	MaxAttestationAuthorities = 4
	MaxConditionRuns          = 8
)

// MaxAttestationBytes is the largest attestation read, and so the largest
// predicate a condition may see; it equals limits.MaxSignatureLayerBytes
// (internal/verify.TestCapsAgree checks).
const MaxAttestationBytes = 1 << 20

// Attestation is one compiled spec.attestations item.
type Attestation struct {
	Name          string
	PredicateType string
	// Authorities are the attestation's own signers; nil means the
	// policy's. Their names are the requirement's name, "/" and the
	// authority's, so they are never confused with the policy's.
	Authorities []Authority
	// Condition is the CEL source; empty holds for any statement.
	Condition string
	program   cel.Program
	// refs are the earlier requirements the condition reads.
	refs []string
}

// Set names the verifier whose checks count for a: its own authorities
// (its name), or the policy's ("").
func (a Attestation) Set() string {
	if a.Authorities == nil {
		return ""
	}
	return a.Name
}

// AttestationFacts is what a verified in-toto statement says, besides its
// predicate type (Signature.PredicateType) and sha256 subjects
// (Signature.Subjects).
type AttestationFacts struct {
	// Set is the verifier the attestation was checked by: an attestation
	// requirement's own authorities (its name), or the policy's ("").
	Set string
	// Claimed is the predicate type the registry's metadata gives (an
	// annotation): a hint only, which the fallback tag may lose; empty
	// when there is none.
	Claimed string
	// Subject lists the statement's subjects.
	Subject []StatementSubject
	// Predicate is the statement's predicate, JSON.
	Predicate json.RawMessage
}

// StatementSubject is one subject of an in-toto statement.
type StatementSubject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// HeldAttestation is an attestation requirement that held, and by what.
type HeldAttestation struct {
	// Name is the requirement's.
	Name string `json:"name"`
	// PredicateType is the verified statement's.
	PredicateType string `json:"predicateType"`
	Acceptance
}

// conditionVars are the variables a condition sees.
var conditionEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("predicate", cel.DynType),
		cel.Variable("predicateType", cel.StringType),
		cel.Variable("subject", cel.ListType(cel.DynType)),
		cel.Variable("signer", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("attestations", cel.MapType(cel.StringType, cel.DynType)),
		ext.Strings(),
	)
})

// compileAttestations compiles spec.attestations: names unique, authorities
// compiled as the policy's are, each condition a boolean whose estimated
// worst-case cost is within MaxConditionCost and that reads only
// requirements listed before it.
func compileAttestations(ref Ref, specs []chartproofv1.AttestationRequirement, read Reader) ([]Attestation, []error) {
	var (
		out  []Attestation
		errs []error
		seen = map[string]bool{}
	)
	if len(specs) > MaxAttestations {
		return nil, []error{fmt.Errorf("%d attestations, more than %d", len(specs), MaxAttestations)}
	}
	for i, s := range specs {
		at := fmt.Sprintf("attestations[%d]", i)
		if s.Name != "" {
			at = fmt.Sprintf("attestation %q", s.Name)
		}
		switch {
		case !validName(s.Name):
			errs = append(errs, fmt.Errorf("%s: name must be a letter then up to 62 letters, digits or _", at))
			continue
		case seen[s.Name]:
			errs = append(errs, fmt.Errorf("%s listed twice", at))
			continue
		case s.PredicateType == "":
			errs = append(errs, fmt.Errorf("%s: no predicateType", at))
			continue
		}
		a := Attestation{Name: s.Name, PredicateType: s.PredicateType, Condition: s.Condition}
		if len(s.Authorities) > MaxAttestationAuthorities {
			errs = append(errs, fmt.Errorf("%s: %d authorities, more than %d", at, len(s.Authorities), MaxAttestationAuthorities))
			continue
		}
		if len(s.Authorities) > 0 {
			// Named "<requirement>/<authority>" before they are compiled,
			// so that nothing keyed by an authority's name (revocation
			// checks) confuses them with the policy's.
			specs := make([]chartproofv1.Authority, len(s.Authorities))
			var bad []error
			for i, x := range s.Authorities {
				if x.HelmProvenance != nil || x.Notation != nil {
					bad = append(bad, fmt.Errorf("authority %q: a helmProvenance or notation authority signs charts, not in-toto attestations", x.Name))
				}
				specs[i] = x
				specs[i].Name = s.Name + "/" + x.Name
			}
			auths, aerrs := compileAuthorities(ref, specs, read)
			for _, err := range append(bad, aerrs...) {
				errs = append(errs, fmt.Errorf("%s: %w", at, err))
			}
			if len(bad)+len(aerrs) > 0 {
				continue
			}
			a.Authorities = auths
		}
		if s.Condition != "" {
			prg, refs, err := compileCondition(s.Condition, seen)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: condition: %w", at, err))
				continue
			}
			a.program, a.refs = prg, refs
		}
		seen[s.Name] = true
		out = append(out, a)
	}
	return out, errs
}

func validName(n string) bool {
	if n == "" || len(n) > 63 || n[0] < 'a' || n[0] > 'z' {
		return false
	}
	for _, c := range n {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// CompileCondition checks a condition as Compile does, every earlier
// requirement name in earlier: for `chartproof verify` and tests.
func CompileCondition(src string, earlier ...string) error {
	names := map[string]bool{}
	for _, n := range earlier {
		names[n] = true
	}
	_, _, err := compileCondition(src, names)
	return err
}

func compileCondition(src string, earlier map[string]bool) (cel.Program, []string, error) {
	env, err := conditionEnv()
	if err != nil {
		return nil, nil, err
	}
	checked, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, nil, iss.Err()
	}
	if checked.OutputType() != cel.BoolType {
		return nil, nil, fmt.Errorf("a %s, not a bool", checked.OutputType())
	}
	// attestations is read only as attestations.<name> of an earlier
	// requirement, so every condition's inputs are known before it runs.
	var refs []string
	root := ast.NavigateAST(checked.NativeRep())
	for _, id := range ast.MatchDescendants(root, ast.KindMatcher(ast.IdentKind)) {
		if id.AsIdent() != "attestations" {
			continue
		}
		parent, ok := id.Parent()
		if !ok || parent.Kind() != ast.SelectKind {
			return nil, nil, errors.New("attestations may be read only as attestations.<name>")
		}
		name := parent.AsSelect().FieldName()
		if !earlier[name] {
			return nil, nil, fmt.Errorf("attestations.%s is not a requirement listed before this one", name)
		}
		if !slices.Contains(refs, name) {
			refs = append(refs, name)
		}
	}
	est, err := env.EstimateCost(checked, sizeBound{})
	if err != nil {
		return nil, nil, fmt.Errorf("estimating its cost: %w", err)
	}
	if est.Max > MaxConditionCost {
		return nil, nil, fmt.Errorf("its worst-case cost %d exceeds the limit of %d (for a predicate of up to %d bytes): scan a list at most once", est.Max, MaxConditionCost, MaxAttestationBytes)
	}
	prg, err := env.Program(checked, cel.CostLimit(MaxConditionCost))
	if err != nil {
		return nil, nil, err
	}
	return prg, refs, nil
}

// sizeBound bounds every input a condition reads by the largest
// attestation: a JSON document of n bytes has at most n/2 list elements or
// map entries, and strings of at most n characters.
type sizeBound struct{}

func (sizeBound) EstimateSize(element checker.AstNode) *checker.SizeEstimate {
	if len(element.Path()) == 0 {
		return nil
	}
	return &checker.SizeEstimate{Min: 0, Max: MaxAttestationBytes / 2}
}

func (sizeBound) EstimateCallCost(function, overloadID string, target *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
	return nil
}

// conditionInput is what a condition sees of one attestation.
func conditionInput(s Signature) (map[string]any, error) {
	in := map[string]any{"predicateType": s.PredicateType}
	var predicate any
	if err := json.Unmarshal(s.Attestation.Predicate, &predicate); err != nil {
		return nil, fmt.Errorf("predicate: %w", err)
	}
	in["predicate"] = predicate
	subject := make([]any, 0, len(s.Attestation.Subject))
	for _, sub := range s.Attestation.Subject {
		digest := make(map[string]any, len(sub.Digest))
		for k, v := range sub.Digest {
			digest[k] = v
		}
		subject = append(subject, map[string]any{"name": sub.Name, "digest": digest})
	}
	in["subject"] = subject
	signer := map[string]any{"keyID": s.KeyID}
	if id := s.Identity; id != nil {
		signer["issuer"], signer["subject"], signer["subjectType"] = id.Issuer, id.Subject, id.SubjectType
		ext := make(map[string]any, len(id.Extensions))
		for k, v := range id.Extensions {
			ext[k] = v
		}
		signer["extensions"] = ext
	}
	in["signer"] = signer
	return in, nil
}

// holds evaluates a's condition for one attestation; held are the inputs
// of the requirements that held before it. why says what went wrong when
// it is not true.
func (a Attestation) holds(s Signature, held map[string]map[string]any) (ok bool, why string) {
	if a.program == nil {
		return true, ""
	}
	in, err := conditionInput(s)
	if err != nil {
		return false, err.Error()
	}
	vars := map[string]any{
		"predicate": in["predicate"], "predicateType": in["predicateType"],
		"subject": in["subject"], "signer": in["signer"],
	}
	earlier := map[string]any{}
	for _, r := range a.refs {
		earlier[r] = held[r]
	}
	vars["attestations"] = earlier
	out, _, err := a.program.Eval(vars)
	if err != nil {
		return false, "evaluation failed: " + err.Error()
	}
	b, isBool := out.Value().(bool)
	if !isBool {
		return false, fmt.Sprintf("evaluated to %v, not a bool", out.Value())
	}
	if !b {
		return false, "false"
	}
	return true, ""
}

// judgeAttestations checks every required attestation, in order; the first
// that does not hold denies, with its reason.
func (p *Policy) judgeAttestations(v Verdict, ev Evidence) Verdict {
	held := map[string]map[string]any{}
	for _, a := range p.Attestations {
		h, in, r := p.judgeAttestation(a, ev, held)
		if r != nil {
			v.Reasons = append(v.Reasons, *r)
			v.Attestations = nil
			return v
		}
		held[a.Name] = in
		v.Attestations = append(v.Attestations, h)
	}
	return v
}

// judgeAttestation decides one requirement. The attestations of its
// verifier whose verified statement has the required predicate type are
// judged as signatures are, under the requirement's authorities with a
// threshold of one (identity, log, validity window, revocations, age, the
// manifest digest as subject); of those that count, the first whose
// condition is true holds.
func (p *Policy) judgeAttestation(a Attestation, ev Evidence, held map[string]map[string]any) (HeldAttestation, map[string]any, *Reason) {
	name := fmt.Sprintf("attestation %s (%s)", a.Name, a.PredicateType)
	var (
		typed   []Signature
		claimed []string // predicate types of statements the registry listed as a.PredicateType
		found   []string
		// unverified are attestations whose statement no authority
		// verified, so its type is unknown, that the registry lists as of
		// the type or as nothing; malformed, those that could not be read.
		unverified, malformed []string
	)
	for _, s := range ev.Attestations {
		if s.Attestation == nil || s.Attestation.Set != a.Set() {
			continue
		}
		if s.PredicateType == a.PredicateType {
			typed = append(typed, s)
			continue
		}
		if s.PredicateType == "" && (s.Attestation.Claimed == "" || s.Attestation.Claimed == a.PredicateType) {
			if s.Malformed {
				malformed = append(malformed, fmt.Sprintf("%s %s: %s", s.Layout, s.Ref, s.Problem))
			} else {
				unverified = append(unverified, fmt.Sprintf("%s %s: %s", s.Layout, s.Ref, s.Problem))
			}
			continue
		}
		if s.PredicateType != "" && !slices.Contains(found, s.PredicateType) {
			found = append(found, s.PredicateType)
		}
		if s.Attestation.Claimed == a.PredicateType && s.PredicateType != "" {
			claimed = append(claimed, s.Ref+": "+s.PredicateType)
		}
	}
	if len(typed) == 0 {
		if len(claimed) > 0 {
			return HeldAttestation{}, nil, &Reason{
				Code:     chartproofv1.ReasonPredicateTypeMismatch,
				Message:  fmt.Sprintf("%s: the registry lists attestations of %s for %s, but their signed statements are of another predicate type", name, a.PredicateType, ev.Digest),
				Expected: a.PredicateType,
				Found:    strings.Join(claimed, "; "),
			}
		}
		if len(unverified) > 0 {
			return HeldAttestation{}, nil, &Reason{
				Code:     chartproofv1.ReasonUntrustedSigner,
				Message:  fmt.Sprintf("%s: %d attestation(s) found for %s, none verifies under the authorities of the requirement", name, len(unverified), ev.Digest),
				Expected: "an attestation signed by " + authorityList(p, a),
				Found:    strings.Join(unverified, "; "),
			}
		}
		foundText := "none"
		if len(found) > 0 {
			foundText = "verified statements of " + strings.Join(found, ", ")
		}
		if len(malformed) > 0 {
			foundText += "; malformed: " + strings.Join(malformed, "; ")
		}
		return HeldAttestation{}, nil, &Reason{
			Code:     chartproofv1.ReasonAttestationMissing,
			Message:  fmt.Sprintf("%s: no attestation of that predicate type was found for %s@%s", name, ev.Repository, ev.Digest),
			Expected: a.PredicateType,
			Found:    foundText,
		}
	}
	sub := &Policy{Ref: p.Ref, Authorities: p.Authorities, Threshold: 1, Mode: p.Mode, Revoked: p.Revoked, MaxSignatureAge: p.MaxSignatureAge}
	if a.Authorities != nil {
		sub.Authorities = a.Authorities
	}
	judge := func(sigs []Signature) Verdict {
		e := ev
		e.Signatures = sigs
		return sub.judgeSignatures(Verdict{Policy: p.Ref, Digest: ev.Digest}, e)
	}
	all := judge(typed)
	if len(all.Reasons) > 0 {
		r := all.Reasons[0]
		switch r.Code {
		case chartproofv1.ReasonSubjectMismatch:
			r.Code = chartproofv1.ReasonAttestationSubjectMismatch
		case chartproofv1.ReasonNoSignature:
			r.Code = chartproofv1.ReasonAttestationMissing
		}
		r.Message = name + ": " + strings.ReplaceAll(r.Message, "signature", "attestation")
		return HeldAttestation{}, nil, &r
	}
	// Some attestation of the type counts. The condition runs only on
	// those whose signer counts, at most MaxConditionRuns of them, so
	// statements anyone can have verified (any identity of a trusted
	// root) cost nothing; the first, in the registry's order, for which it
	// is true holds.
	var whys []string
	runs := 0
	for _, s := range typed {
		one := judge([]Signature{s})
		if len(one.Reasons) > 0 || len(one.Accepted) == 0 {
			if len(one.Reasons) > 0 {
				whys = append(whys, s.Ref+": "+one.Reasons[0].Code)
			}
			continue
		}
		if runs == MaxConditionRuns {
			whys = append(whys, fmt.Sprintf("%s: not evaluated, over the cap of %d evaluations of one condition", s.Ref, MaxConditionRuns))
			continue
		}
		runs++
		ok, why := a.holds(s, held)
		if !ok {
			whys = append(whys, s.Ref+": "+why)
			continue
		}
		in, err := conditionInput(s)
		if err != nil {
			whys = append(whys, s.Ref+": "+err.Error())
			continue
		}
		return HeldAttestation{Name: a.Name, PredicateType: s.PredicateType, Acceptance: one.Accepted[0]}, in, nil
	}
	return HeldAttestation{}, nil, &Reason{
		Code:     chartproofv1.ReasonPredicateRejected,
		Message:  fmt.Sprintf("%s: the condition %q is not true for any trusted attestation of %s", name, a.Condition, ev.Digest),
		Expected: a.Condition,
		Found:    strings.Join(whys, "; "),
	}
}

// authorityList names the authorities whose signatures count for a.
func authorityList(p *Policy, a Attestation) string {
	auths := p.Authorities
	if a.Authorities != nil {
		auths = a.Authorities
	}
	names := make([]string, 0, len(auths))
	for _, x := range auths {
		names = append(names, x.Name)
	}
	return strings.Join(names, ", ")
}
