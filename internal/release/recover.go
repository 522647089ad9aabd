package release

import (
	"context"
	"fmt"

	"helm.sh/helm/v3/pkg/release"
)

// Pending reports whether rel, the latest record of a release, is one an
// operation left unfinished: pending-install, pending-upgrade,
// pending-rollback or uninstalling. Apply refuses such a release with
// ErrPending; Recover repairs it.
func Pending(rel *release.Release) bool {
	return rel != nil && rel.Info != nil && (rel.Info.Status.IsPending() || rel.Info.Status == release.StatusUninstalling)
}

// Recovery is what Recover found.
type Recovery struct {
	// Interrupted is the revision that was found unfinished, and Status
	// the state it was left in.
	Interrupted int
	Status      release.Status
}

// Recover unlocks a release whose latest record an interrupted operation
// left unfinished (see Pending): it marks that record failed, and does
// nothing else. Nothing in the record is applied, and nothing in it decides
// what is deleted: it is the plan of an action that did not finish, and
// Helm's records are Secrets that anyone with write access to the namespace
// could have written. (Helm's rollback would diff against it, and delete
// whatever it lists that the revision rolled back to does not.)
//
// The caller then applies verified bytes (Apply): an upgrade from the
// deployed record it vouches for, when there is one (Request.Trusted; the
// three-way patch puts back what the interrupted action changed of the
// chart's objects), otherwise a fresh install over the objects left
// (Request.Replace, or Apply's own choice when nothing is deployed).
// Objects that only the interrupted action created, and the new rendering
// does not, are left as they are.
//
// Recover returns an error when the latest record is not unfinished, or is
// not owned by owner (wrapping ErrNotOwned), and changes nothing then.
// Helm's records are the only lock: Recover must only be called when no
// other process operates the release, which is what leader election
// guarantees among chartproof managers.
func (m *Manager) Recover(ctx context.Context, namespace, name, owner string) (*Recovery, error) {
	rec, err := m.recover(ctx, namespace, name, owner)
	if err != nil {
		return nil, fmt.Errorf("release: recover %s/%s: %w", namespace, name, err)
	}
	return rec, nil
}

func (m *Manager) recover(ctx context.Context, namespace, name, owner string) (*Recovery, error) {
	cfg, err := m.configuration(ctx, Location{Namespace: namespace}, name)
	if err != nil {
		return nil, err
	}
	last, err := latest(cfg, name)
	if err != nil {
		return nil, err
	}
	if owner == "" {
		return nil, fmt.Errorf("no owner: %w", ErrNotOwned)
	}
	if err := checkOwner(last, owner); err != nil {
		return nil, err
	}
	if !Pending(last) {
		return nil, fmt.Errorf("revision %d is %s: nothing to recover", last.Version, last.Info.Status)
	}
	rec := &Recovery{Interrupted: last.Version, Status: last.Info.Status}
	last.SetStatus(release.StatusFailed, fmt.Sprintf("%s interrupted; marked failed by chartproof, which applies the verified chart next", last.Info.Status))
	if err := cfg.Releases.Update(last); err != nil {
		return nil, fmt.Errorf("marking revision %d failed: %w", last.Version, err)
	}
	return rec, nil
}
