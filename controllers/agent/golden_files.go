package agent

import (
	"context"
	"errors"

	ctrl "sigs.k8s.io/controller-runtime"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// goldenFiles lands the template's prompt and files in its golden, as a
// Bottle's are landed in its machine (guestFiles), each recorded in the
// entry once in place so it is not copied again. A file whose owner the
// guest lacks waits, since a step may create the user: provision calls
// this again after each step. waits lists them by owner. ok false ends the
// pass (res and err say how).
//
// A golden takes its files when it is provisioned: once forked it is
// frozen and runs nothing, so a ConfigMap changed later reaches new
// goldens only (edit the template). A template's files are never Secrets
// (CEL): they would be in every fork.
func (r *TemplateReconciler) goldenFiles(ctx context.Context, g *golden, execUser string) (waits map[string][]string, ok bool, res ctrl.Result, err error) {
	spec := &g.t.Spec.MachineSpec
	if len(spec.Files) == 0 && spec.Prompt == nil {
		return nil, true, ctrl.Result{}, nil
	}
	src := sourcesIn(r.APIReader, nil, nil, g.t.Namespace)
	want, err := desiredFiles(ctx, spec, execUser, src)
	if err != nil {
		g.set(v1.PhaseFailed, v1.ReasonSourceNotFound, "%v", err)
		return nil, false, ctrl.Result{RequeueAfter: r.ResyncPeriod}, nil
	}
	have := map[string]v1.FileStatus{}
	for _, f := range g.entry.Files {
		have[f.Path] = f
	}
	var todo []desiredFile
	for _, f := range want {
		if h, in := have[f.path]; !in || !f.inPlace(h) {
			if err := loadContent(ctx, src, &f); err != nil {
				g.set(v1.PhaseFailed, v1.ReasonSourceNotFound, "%v", err)
				return nil, false, ctrl.Result{RequeueAfter: r.ResyncPeriod}, nil
			}
			todo = append(todo, f)
		}
	}
	if len(todo) == 0 {
		g.entry.Files = mergeFileStatus(want, have, nil)
		return nil, true, ctrl.Result{}, nil
	}
	g.set(v1.PhaseCopyingFiles, v1.ReasonCopyingFiles, "copying %d file(s) into golden machine %s", len(todo), g.name)
	if err := r.writeEntry(ctx, g); err != nil {
		return nil, false, ctrl.Result{}, err
	}
	results, err := guestFiles{machines: r.Machines, tempDir: r.TempDir}.land(ctx, g.name, todo)
	copied := map[string]v1.FileStatus{}
	ownerless, refusedFile, why := tally(todo, results, copied)
	waits = map[string][]string{}
	for _, f := range ownerless {
		waits[f.owner] = append(waits[f.owner], f.path)
	}
	// What did land is recorded even when a later file failed.
	g.entry.Files = mergeFileStatus(want, have, copied)
	if failed, isCall := errors.AsType[*guestCallError](err); isCall {
		res, err := r.smolvmFailure(g, failed.action+" in", failed.err)
		return nil, false, res, err
	} else if err != nil {
		return nil, false, ctrl.Result{}, err
	}
	if refusedFile != nil {
		// Nothing else writes into a golden: a refusal is the image's (a
		// link where a directory is expected), fixed by editing the template.
		g.set(v1.PhaseFailed, v1.ReasonUnsafePath, "file %s: %s; edit the template to change the path", refusedFile.path, why)
		return nil, false, ctrl.Result{}, nil
	}
	return waits, true, ctrl.Result{}, nil
}
