package release

import (
	"context"
	"errors"
	"fmt"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// Pending reports whether rel, the latest record of a release, is one an
// operation left unfinished: pending-install, pending-upgrade,
// pending-rollback or uninstalling. Apply refuses such a release with
// ErrPending; Recover repairs it.
func Pending(rel *release.Release) bool {
	return rel != nil && rel.Info != nil && (rel.Info.Status.IsPending() || rel.Info.Status == release.StatusUninstalling)
}

// Recovery is what Recover did.
type Recovery struct {
	// Interrupted is the revision that was found unfinished, and Status
	// the state it was left in.
	Interrupted int
	Status      release.Status
	// RolledBackTo is the deployed revision the release was rolled back
	// to; zero when the release was uninstalled.
	RolledBackTo int
	// Release is the release after the rollback: deployed, at a new
	// revision with the chart, values and manifest of RolledBackTo. It is
	// nil when the release was uninstalled, or only marked failed.
	Release *release.Release
	// MarkedFailed is set when the unfinished record was marked failed and
	// nothing was applied: the deployed revision is not the one the caller
	// trusts, so its recorded objects are not put back.
	MarkedFailed bool
	// Reinstall is set when no revision was deployed (an interrupted
	// install, or an interrupted uninstall): the unfinished record was
	// marked failed and nothing was applied or deleted; Apply then drops
	// the records and installs afresh, and Uninstall works from the record
	// the caller trusts.
	Reinstall bool
	// Tampered is set when the caller vouched for a record (a non-zero
	// Trust.Revision) and the deployed one is not it, or not as the caller
	// recorded it (Trust.Digest): it was marked failed, not rolled back to.
	Tampered bool
}

// Recover repairs a release whose latest record an interrupted operation
// left unfinished (see Pending), with one Helm action:
//
//   - pending-install, pending-upgrade or pending-rollback, with a deployed
//     revision: the unfinished record is marked failed, and, when the
//     deployed revision is trusted (the revision the caller installed from
//     verified bytes, whose record still has the digest the caller recorded
//     when it recorded one), the release is rolled back to it (helm rollback),
//     which puts back that revision's objects, stamp included, and deletes
//     what the interrupted operation added. A deployed revision the caller
//     did not install is never put back: Helm's records are Secrets anyone
//     with write access to the namespace could have written, so the release
//     is left failed, for the caller to apply verified bytes over it;
//   - the same with no deployed revision, or uninstalling: the unfinished
//     record is marked failed and nothing else is done (Reinstall): no record
//     nothing vouches for decides what is deleted.
//
// Recover returns an error when the latest record is not unfinished, or is
// not owned by owner (wrapping ErrNotOwned), and changes nothing then.
// Helm's records are the only lock: Recover must only be called when no
// other process operates the release, which is what
// leader election guarantees among chartproof managers. The rolled back
// objects are those Helm recorded for the deployed revision; nothing is
// rendered again.
//
// The record is marked failed before the rollback, and so is the rollback's
// own record when the rollback fails: a failed recovery leaves a failed
// release, which Apply upgrades as the helm CLI would, never one that stays
// pending.
func (m *Manager) Recover(ctx context.Context, namespace, name, owner string, trusted Trust) (*Recovery, error) {
	rec, err := m.recover(ctx, namespace, name, owner, trusted)
	if err != nil {
		return nil, fmt.Errorf("release: recover %s/%s: %w", namespace, name, err)
	}
	return rec, nil
}

func (m *Manager) recover(ctx context.Context, namespace, name, owner string, trusted Trust) (*Recovery, error) {
	cfg, err := m.configuration(ctx, namespace, name)
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

	var deployed *release.Release
	if last.Info.Status != release.StatusUninstalling {
		deployed, err = cfg.Releases.Deployed(name)
		if err != nil && !errors.Is(err, driver.ErrNoDeployedReleases) {
			return nil, fmt.Errorf("reading the deployed revision: %w", err)
		}
	}
	if deployed == nil {
		// Nothing vouches for the unfinished record, so nothing in it
		// decides what to delete: it is marked failed, and the next Apply,
		// finding no deployed revision, drops the records and installs
		// the verified chart afresh (taking over the objects the
		// interrupted action made); an uninstall that was under way is
		// done again by the caller, from the record it trusts.
		last.SetStatus(release.StatusFailed, fmt.Sprintf("%s interrupted with no deployed revision; chartproof installs afresh", last.Info.Status))
		if err := cfg.Releases.Update(last); err != nil {
			return nil, fmt.Errorf("marking revision %d failed: %w", last.Version, err)
		}
		rec.Reinstall = true
		return rec, nil
	}

	// Only the record the caller vouches for is put back.
	terr := checkTrusted(cfg, name, trusted)
	if terr != nil && !errors.Is(terr, ErrRecordTampered) {
		return nil, terr
	}
	rec.Tampered = terr != nil && trusted.Revision != 0
	if terr != nil {
		last.SetStatus(release.StatusFailed, fmt.Sprintf("%s interrupted; deployed revision %d is not one chartproof installed: not rolled back", last.Info.Status, deployed.Version))
		if err := cfg.Releases.Update(last); err != nil {
			return nil, fmt.Errorf("marking revision %d failed: %w", last.Version, err)
		}
		rec.MarkedFailed = true
		return rec, nil
	}
	last.SetStatus(release.StatusFailed, fmt.Sprintf("%s interrupted; chartproof rolls back to revision %d", last.Info.Status, deployed.Version))
	if err := cfg.Releases.Update(last); err != nil {
		return nil, fmt.Errorf("marking revision %d failed: %w", last.Version, err)
	}
	rollback := action.NewRollback(cfg)
	rollback.Version = deployed.Version
	rollback.Timeout = m.timeout
	rollback.MaxHistory = maxHistory
	rollback.Wait = false
	if err := rollback.Run(name); err != nil {
		err = fmt.Errorf("rollback to revision %d: %w", deployed.Version, err)
		// Helm records the rollback as pending before it applies anything,
		// and leaves it so when it fails early (the manifest does not build,
		// a hook fails): that record is marked failed too.
		if l, lerr := latest(cfg, name); lerr == nil && l.Version > last.Version && Pending(l) {
			l.SetStatus(release.StatusFailed, "Rollback failed: "+err.Error())
			if uerr := cfg.Releases.Update(l); uerr != nil {
				err = errors.Join(err, fmt.Errorf("marking revision %d failed: %w", l.Version, uerr))
			}
		}
		return nil, err
	}
	rel, err := latest(cfg, name)
	if err != nil {
		return nil, fmt.Errorf("reading the release after the rollback: %w", err)
	}
	rec.RolledBackTo, rec.Release = deployed.Version, rel
	return rec, nil
}
