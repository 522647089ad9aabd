// Package testworkload stands in for the controllers and kubelets a test API
// server lacks (envtest runs kube-apiserver and etcd alone): it writes the
// status a Deployment has once its pods run, so that kstatus, and chartproof's
// health checks with it, see the Deployment become Current. A namespace can
// be held (its Deployments never become available, as when their pods crash
// or cannot be scheduled) or failed (their rollout exceeds its progress
// deadline, which kstatus reads as Failed), and so can an image. Helm test
// Pods (helm.sh/hook: test) end as their kubelet would once their container
// exited: Succeeded, or Failed in a namespace FailTests names.
//
// It is for tests and the demo only; the status it writes is the one the
// deployment controller writes (observedGeneration, the replica counts, the
// Available and Progressing conditions), nothing of a real rollout.
package testworkload

import (
	"context"
	"fmt"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Mode is what becomes of the Deployments of a namespace.
type Mode int

const (
	// Available: each Deployment becomes available with all its replicas.
	Available Mode = iota
	// Held: no status is written; kstatus reads InProgress.
	Held
	// Failed: the rollout exceeded its progress deadline; kstatus reads
	// Failed.
	Failed
)

// Rollouts writes the status of the Deployments of a test API server.
type Rollouts struct {
	client kubernetes.Interface
	queue  workqueue.TypedRateLimitingInterface[cache.ObjectName]
	lister func(namespace, name string) (*appsv1.Deployment, error)

	mu     sync.Mutex
	modes  map[string]Mode // by namespace
	images map[string]Mode // by container image, before the namespace's

	failingTests map[string]bool // namespaces whose Helm test Pods fail
	pods         func(namespace, name string) (*corev1.Pod, error)
}

// Start watches the Deployments of the API server cfg points to and writes
// their status until ctx ends. It returns once its cache has synced.
func Start(ctx context.Context, cfg *rest.Config) (*Rollouts, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	factory := informers.NewSharedInformerFactory(cs, 0)
	inf := factory.Apps().V1().Deployments()
	r := &Rollouts{
		client: cs,
		queue:  workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName]()),
		lister: func(ns, name string) (*appsv1.Deployment, error) { return inf.Lister().Deployments(ns).Get(name) },
		modes:  map[string]Mode{},
		images: map[string]Mode{},

		failingTests: map[string]bool{},
	}
	enqueue := func(o any) {
		if name, err := cache.ObjectToName(o); err == nil {
			r.queue.Add(name)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, o any) { enqueue(o) },
	}); err != nil {
		return nil, err
	}
	// Pods are queued by name too, under a prefix no Deployment has.
	pods := factory.Core().V1().Pods()
	r.pods = func(ns, name string) (*corev1.Pod, error) { return pods.Lister().Pods(ns).Get(name) }
	enqueuePod := func(o any) {
		if name, err := cache.ObjectToName(o); err == nil {
			r.queue.Add(cache.ObjectName{Namespace: name.Namespace, Name: podPrefix + name.Name})
		}
	}
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueuePod,
		UpdateFunc: func(_, o any) { enqueuePod(o) },
	}); err != nil {
		return nil, err
	}
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, fmt.Errorf("testworkload: the cache of %v did not sync", typ)
		}
	}
	go func() {
		<-ctx.Done()
		r.queue.ShutDown()
	}()
	go func() {
		for r.next(ctx) {
		}
	}()
	return r, nil
}

// Set says what becomes of the Deployments of namespace from now on
// (Available by default); those already there are looked at again.
func (r *Rollouts) Set(namespace string, m Mode) error {
	r.mu.Lock()
	r.modes[namespace] = m
	r.mu.Unlock()
	return r.requeue(namespace)
}

// requeue looks again at the Deployments of namespace ("" for all).
func (r *Rollouts) requeue(namespace string) error {
	list, err := r.client.AppsV1().Deployments(namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, d := range list.Items {
		r.queue.Add(cache.ObjectName{Namespace: d.Namespace, Name: d.Name})
	}
	return nil
}

// SetImage says what becomes of every Deployment one of whose containers
// runs image, whatever its namespace says (a chart version that never
// becomes available, next to one that does).
func (r *Rollouts) SetImage(image string, m Mode) error {
	r.mu.Lock()
	r.images[image] = m
	r.mu.Unlock()
	return r.requeue("")
}

func (r *Rollouts) mode(d *appsv1.Deployment) Mode {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range d.Spec.Template.Spec.Containers {
		if m, ok := r.images[c.Image]; ok {
			return m
		}
	}
	return r.modes[d.Namespace]
}

func (r *Rollouts) next(ctx context.Context) bool {
	name, shutdown := r.queue.Get()
	if shutdown {
		return false
	}
	defer r.queue.Done(name)
	if err := r.sync(ctx, name); err != nil {
		r.queue.AddRateLimited(name)
		return true
	}
	r.queue.Forget(name)
	return true
}

// podPrefix marks a Pod's key in the queue (no object name has a slash).
const podPrefix = "pod/"

func (r *Rollouts) sync(ctx context.Context, name cache.ObjectName) error {
	if podName, ok := strings.CutPrefix(name.Name, podPrefix); ok {
		p, err := r.pods(name.Namespace, podName)
		if err != nil {
			return nil // deleted
		}
		return r.syncPod(ctx, p)
	}
	d, err := r.lister(name.Namespace, name.Name)
	if err != nil {
		return nil // deleted
	}
	want := d.Status.DeepCopy()
	switch r.mode(d) {
	case Held:
		return nil
	case Failed:
		want.ObservedGeneration = d.Generation
		want.Conditions = []appsv1.DeploymentCondition{{
			Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded",
			Message: fmt.Sprintf("ReplicaSet %q has timed out progressing.", d.Name),
		}}
	default:
		replicas := int32(1)
		if d.Spec.Replicas != nil {
			replicas = *d.Spec.Replicas
		}
		want.ObservedGeneration = d.Generation
		want.Replicas, want.UpdatedReplicas, want.ReadyReplicas, want.AvailableReplicas, want.UnavailableReplicas = replicas, replicas, replicas, replicas, 0
		want.Conditions = []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable", Message: "Deployment has minimum availability."},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable", Message: fmt.Sprintf("ReplicaSet %q has successfully progressed.", d.Name)},
		}
	}
	if sameStatus(d.Status, *want) {
		return nil
	}
	next := d.DeepCopy()
	next.Status = *want
	_, err = r.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	return err
}

// sameStatus compares what sync writes, not the conditions' times.
func sameStatus(a, b appsv1.DeploymentStatus) bool {
	if a.ObservedGeneration != b.ObservedGeneration || a.Replicas != b.Replicas || a.UpdatedReplicas != b.UpdatedReplicas ||
		a.ReadyReplicas != b.ReadyReplicas || a.AvailableReplicas != b.AvailableReplicas || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason {
			return false
		}
	}
	return true
}
