package testworkload

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// isTestPod reports whether p is a Helm test hook (helm.sh/hook: test).
func isTestPod(p *corev1.Pod) bool {
	for _, h := range strings.Split(p.Annotations["helm.sh/hook"], ",") {
		if strings.TrimSpace(h) == "test" || strings.TrimSpace(h) == "test-success" {
			return true
		}
	}
	return false
}

// FailTests makes the Helm test Pods of namespace fail from now on (they
// succeed by default).
func (r *Rollouts) FailTests(namespace string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failingTests[namespace] = true
}

// syncPod ends a Helm test Pod as its kubelet would once its container
// exited: Succeeded, or Failed in a namespace FailTests named.
func (r *Rollouts) syncPod(ctx context.Context, p *corev1.Pod) error {
	if !isTestPod(p) || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return nil
	}
	r.mu.Lock()
	phase, code := corev1.PodSucceeded, int32(0)
	if r.failingTests[p.Namespace] {
		phase, code = corev1.PodFailed, 1
	}
	r.mu.Unlock()
	next := p.DeepCopy()
	next.Status.Phase = phase
	for _, c := range p.Spec.Containers {
		next.Status.ContainerStatuses = append(next.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: map[bool]string{true: "Completed", false: "Error"}[code == 0]}},
		})
	}
	_, err := r.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	return err
}
