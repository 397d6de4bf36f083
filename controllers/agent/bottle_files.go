package agent

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// desiredFile is one file the guest must hold.
type desiredFile struct {
	path  string
	mode  int32
	owner string
	ref   contentRef
	// sha256 is what status records for the content (see digest).
	sha256 string
	// content is read only for a file to copy (loadContent).
	content content
}

// digest is the content's hex SHA-256; for Secret content an HMAC-SHA256
// keyed with the install's digest key (see DigestKey), so that readers of
// status cannot test guesses of a short secret against it.
func digest(c content, key []byte) string {
	h := sha256.New()
	if c.secret {
		h = hmac.New(sha256.New, key)
	}
	h.Write(c.data)
	return hex.EncodeToString(h.Sum(nil))
}

// inPlace says whether status records this very file in the guest.
func (f desiredFile) inPlace(h v1.FileStatus) bool {
	return h.SHA256 == f.sha256 && h.Mode == f.mode && h.Owner == f.owner
}

// desiredFiles lists the prompt (when it has a source) and spec.files, with
// the digests of their contents (read only when their source changed).
func desiredFiles(ctx context.Context, spec *v1.MachineSpec, execUser string, src *sources) ([]desiredFile, error) {
	var out []desiredFile
	if spec.Prompt != nil && spec.PromptPath != "" {
		ref := contentRef{inline: spec.Prompt.Inline, cm: spec.Prompt.ConfigMapKeyRef, sec: spec.Prompt.SecretKeyRef}
		sum, err := src.digest(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("prompt: %w", err)
		}
		// The exec user must be able to read the prompt claude is given.
		out = append(out, desiredFile{path: spec.PromptPath, mode: 0o644, owner: execUser, ref: ref, sha256: sum})
	}
	for _, f := range spec.Files {
		ref := contentRef{inline: f.Inline, cm: f.ConfigMapKeyRef, sec: f.SecretKeyRef}
		sum, err := src.digest(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("file %s: %w", f.Path, err)
		}
		mode := int32(0o644)
		if f.Mode != nil {
			mode = *f.Mode
		}
		out = append(out, desiredFile{path: f.Path, mode: mode, owner: f.Owner, ref: ref, sha256: sum})
	}
	return out, nil
}

// loadContent reads the content of a file to copy. Its digest is taken
// again from what was read: that is what lands in the guest.
func loadContent(ctx context.Context, src *sources, f *desiredFile) error {
	c, err := src.file(ctx, f.ref)
	if err != nil {
		return fmt.Errorf("file %s: %w", f.path, err)
	}
	f.content, f.sha256 = c, digest(c, src.digestKey)
	return nil
}

// reconcileFiles copies in every file whose content, mode or owner differs
// from what status says the guest holds. Contents pass through a private
// host directory that is removed before the pass ends. A file whose owner
// does not exist yet waits, and provisioning goes on: a step may create the
// user, and the file is copied as soon as it exists (reconcileProvision
// calls this phase again after each step while files wait).
func (r *BottleReconciler) reconcileFiles(ctx context.Context, s *scope) (bool, ctrl.Result, error) {
	st := s.status()
	want, err := desiredFiles(ctx, &s.spec().MachineSpec, s.execUser(), s.sources)
	if err != nil {
		return r.sourceMissing(s, v1.ConditionFilesReady, err)
	}

	have := map[string]v1.FileStatus{}
	for _, f := range st.Files {
		have[f.Path] = f
	}
	var todo []desiredFile
	for _, f := range want {
		if h, ok := have[f.path]; !ok || !f.inPlace(h) {
			todo = append(todo, f)
		}
	}
	s.ownerWaits = nil
	if len(todo) == 0 {
		st.Files = mergeFileStatus(want, have, nil)
		s.setCondition(v1.ConditionFilesReady, metav1.ConditionTrue, v1.ReasonFilesCopied, fmt.Sprintf("%d file(s) in place", len(want)))
		return true, ctrl.Result{}, nil
	}

	// A file whose owner the guest lacked a moment ago waits without a
	// copy; the others are copied, and the placement says which owners
	// are missing.
	var ready []desiredFile
	for _, f := range todo {
		if r.owners.missing(s.bottle.UID, f.owner) {
			s.waitForOwner(f)
			continue
		}
		if err := loadContent(ctx, s.sources, &f); err != nil {
			return r.sourceMissing(s, v1.ConditionFilesReady, err)
		}
		ready = append(ready, f)
	}

	copied := map[string]v1.FileStatus{}
	defer func() {
		// Record what did land even when a later file fails, so it is not
		// copied again.
		st.Files = mergeFileStatus(want, have, copied)
	}()
	if len(ready) > 0 {
		s.setCondition(v1.ConditionFilesReady, metav1.ConditionFalse, v1.ReasonCopyingFiles, fmt.Sprintf("copying %d file(s)", len(ready)))
		if err := r.retryProgress(ctx, s, v1.ConditionFilesReady, v1.ReasonCopyingFiles, fmt.Sprintf("copying %d file(s) into machine %s", len(ready), s.machineName)); err != nil {
			return false, ctrl.Result{}, err
		}
		if ok, res, err := r.copyFiles(ctx, s, ready, copied); !ok {
			return false, res, err
		}
		if len(copied) > 0 {
			r.event(s, corev1.EventTypeNormal, v1.ReasonFilesCopied, "Copy", "copied %d file(s) into machine %s", len(copied), s.machineName)
		}
	}

	if len(s.ownerWaits) > 0 {
		stepsPending := planSteps(s.execUser(), s.spec().Provision, st.ExecResults, s.retry).Action != stepsDone
		v, stall := ownerWaitVerdict(s.ownerWaits, stepsPending)
		s.setCondition(v1.ConditionFilesReady, metav1.ConditionFalse, v.Reason, v.Message)
		if stall {
			s.stall(v.Reason, v.Message)
			return false, ctrl.Result{}, nil
		}
		s.wait(v.Reason, v.Message)
		r.event(s, corev1.EventTypeNormal, v.Reason, "Copy", "%s", v.Message)
		return true, ctrl.Result{}, nil
	}
	s.setCondition(v1.ConditionFilesReady, metav1.ConditionTrue, v1.ReasonFilesCopied, fmt.Sprintf("%d file(s) in place", len(want)))
	return true, ctrl.Result{}, nil
}

// copyFiles lands files in the guest (guestFiles.land), recording each one
// placed in copied.
func (r *BottleReconciler) copyFiles(ctx context.Context, s *scope, files []desiredFile, copied map[string]v1.FileStatus) (bool, ctrl.Result, error) {
	results, err := r.guest().land(ctx, s.machineName, files)
	ownerless, refusedFile, why := tally(files, results, copied)
	for _, f := range ownerless {
		r.owners.add(s.bottle.UID, f.owner)
		s.waitForOwner(f)
	}
	if len(results) > 0 {
		r.view.alive(s.machineName)
	}
	if failed, ok := errors.AsType[*guestCallError](err); ok {
		return r.smolvmFailure(s, v1.ConditionFilesReady, failed.action, failed.err)
	}
	if refusedFile != nil {
		return r.unsafePath(s, *refusedFile, why)
	}
	return true, ctrl.Result{}, nil
}
