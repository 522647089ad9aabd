// Package e2e tests chartproof over real processes: the chartproof binary
// (manager and CLI), a real kube-apiserver and etcd (envtest), the CNCF
// distribution registry binary, go-containerregistry's registry on loopback,
// the real cosign v2 and v3 CLIs, and a throwaway keyless Sigstore (Fulcio,
// Rekor v2, a timestamp authority and an OIDC issuer of our own).
//
// The tools are built and cached by hack/tools.sh; `make test` passes their
// paths in KUBEBUILDER_ASSETS, CHARTPROOF_REGISTRY, CHARTPROOF_COSIGN_V2,
// CHARTPROOF_COSIGN_V3, CHARTPROOF_FULCIO, CHARTPROOF_REKOR,
// CHARTPROOF_TSA (Fulcio, Rekor v2 and the timestamp authority of the local
// keyless Sigstore, see sigstore_test.go), CHARTPROOF_ORAS,
// CHARTPROOF_HELM (the Helm CLI; gpg comes from Debian's gnupg package) and
// CHARTPROOF_NOTATION. Every
// process a test starts runs in its own process group and is stopped when
// the test ends. Nothing leaves loopback: each subprocess gets an HTTP(S)
// proxy that refuses connections, and Go never proxies loopback addresses.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testworkload"
)

// Set by TestMain.
var (
	chartproofBin string // the chartproof binary (manager and CLI), built once
	cliBin        string // the command line alone (go build -tags cli), built once
	tools         toolPaths
	restConfig    *rest.Config // envtest's API server, as its admin
	testEnv       *envtest.Environment
	k8s           client.Client
	clientset     kubernetes.Interface
	scheme        = runtime.NewScheme()
)

// toolPaths are the binaries `make test` builds and passes in.
type toolPaths struct {
	registry, cosignV2, cosignV3 string
	fulcio, rekor, tsa           string // the local keyless Sigstore's servers
	oras                         string // attaches what cosign would not
	helm                         string // the Helm CLI: `helm package --sign`, `helm push`
	notation                     string // the Notation CLI: `notation sign`, `notation verify`
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	env := map[string]string{}
	var missing []string
	for _, name := range []string{"KUBEBUILDER_ASSETS", "CHARTPROOF_REGISTRY", "CHARTPROOF_COSIGN_V2", "CHARTPROOF_COSIGN_V3",
		"CHARTPROOF_FULCIO", "CHARTPROOF_REKOR", "CHARTPROOF_TSA", "CHARTPROOF_ORAS", "CHARTPROOF_HELM", "CHARTPROOF_NOTATION"} {
		v := os.Getenv(name)
		if v == "" {
			missing = append(missing, name)
			continue
		}
		if _, err := os.Stat(v); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %s=%s: %v\nrun these tests with `make test`, which builds the tools they need and sets the variables\n", name, v, err)
			return 1
		}
		env[name] = v
	}
	if len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: %s not set: run these tests with `make test`, which builds the tools they need (kube-apiserver, etcd, registry, cosign v2 and v3, Fulcio, Rekor v2, timestamp authority, oras, helm, notation) and sets the variables\n",
			strings.Join(missing, ", "))
		return 1
	}
	tools = toolPaths{registry: env["CHARTPROOF_REGISTRY"], cosignV2: env["CHARTPROOF_COSIGN_V2"], cosignV3: env["CHARTPROOF_COSIGN_V3"],
		fulcio: env["CHARTPROOF_FULCIO"], rekor: env["CHARTPROOF_REKOR"], tsa: env["CHARTPROOF_TSA"], oras: env["CHARTPROOF_ORAS"], helm: env["CHARTPROOF_HELM"], notation: env["CHARTPROOF_NOTATION"]}

	dir, err := os.MkdirTemp("", "chartproof-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)

	// Build the binary while the API server starts.
	chartproofBin, cliBin = filepath.Join(dir, "chartproof"), filepath.Join(dir, "cli", "chartproof")
	built := make(chan error, 1)
	go func() {
		for _, args := range [][]string{{"-o", chartproofBin}, {"-tags", "cli", "-o", cliBin}} {
			cmd := exec.Command("go", append(append([]string{"build"}, args...), "github.com/chartproof/chartproof")...)
			cmd.Dir = ".." // the module root
			if out, err := cmd.CombinedOutput(); err != nil {
				built <- fmt.Errorf("go build %v: %w\n%s", args, err, out)
				return
			}
		}
		built <- nil
	}()

	// The API server keeps its certificates and service-account keys in a
	// directory of ours, not one envtest deletes when it stops, so that
	// stopAPIServer and startAPIServer bring back the same server: same port,
	// certificates, tokens and etcd.
	certDir := filepath.Join(dir, "kube-apiserver")
	if err := os.Mkdir(certDir, 0o700); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		<-built
		return 1
	}
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		ControlPlane:          envtest.ControlPlane{APIServer: &envtest.APIServer{CertDir: certDir}},
	}
	cfg, err := testEnv.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: starting envtest: %v\n", err)
		<-built
		return 1
	}
	defer func() {
		if err := testEnv.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: stopping envtest: %v\n", err)
		}
	}()
	if err := <-built; err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building chartproof: %v\n", err)
		return 1
	}

	restConfig = cfg
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, chartproofv1.AddToScheme} {
		if err := add(scheme); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
			return 1
		}
	}
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	if clientset, err = kubernetes.NewForConfig(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	// envtest runs no deployment controller and no kubelet: Deployments
	// are made available as they would be, so that releases become
	// healthy (internal/testworkload).
	if err := startRollouts(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer stopRollouts()
	return m.Run()
}

// isolatedEnv is the environment of a subprocess: PATH, a HOME of its own
// (so nothing reads or writes the real home directory, Docker config
// included), and proxies that refuse every connection, so nothing but
// loopback is reachable. Extra entries are appended.
func isolatedEnv(t *testing.T, extra ...string) []string {
	t.Helper()
	home := t.TempDir()
	const deadProxy = "http://127.0.0.1:9" // discard port: nothing listens
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"DOCKER_CONFIG=" + filepath.Join(home, ".docker"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"HTTPS_PROXY=" + deadProxy,
		"HTTP_PROXY=" + deadProxy,
		"NO_PROXY=127.0.0.1,localhost",
	}
	return append(env, extra...)
}

// process is a subprocess in its own process group, with its output kept.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // what Wait returned; read after done
}

// startProcess starts cmd in a process group of its own and stops the group
// when the test ends (SIGTERM, then SIGKILL). Its output is logged when the
// test fails.
func startProcess(t *testing.T, name string, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{name: name, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	// Pdeathsig kills the child if the test binary dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if err := p.stop(10 * time.Second); err != nil && !p.exitedBySignal() {
			t.Logf("%s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, p.out.String())
		}
	})
	return p
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process group.
func (p *process) signal(sig syscall.Signal) error {
	err := syscall.Kill(-p.cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// wait waits up to timeout for the process to exit and returns what Wait
// returned; it returns an error if it is still running.
func (p *process) wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s still running after %s", p.name, timeout)
	}
}

// stop sends SIGTERM to the group, waits up to grace, then kills the group.
// Whatever else the group still holds is killed too.
func (p *process) stop(grace time.Duration) error {
	if !p.exited() {
		_ = p.signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	_ = p.signal(syscall.SIGKILL) // the leader or anything it left behind
	<-p.done
	return p.err
}

func (p *process) exitedBySignal() bool {
	var exitErr *exec.ExitError
	if !errors.As(p.err, &exitErr) {
		return false
	}
	ws, ok := exitErr.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

// syncBuffer is a bytes.Buffer safe for a process's two output streams and
// a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// result is the outcome of a command run to completion.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runCLI runs the command line build of chartproof with args (verify or
// verify-blob) and returns its outcome. It runs the full build with the
// same arguments too, and fails the test unless both exit the same way
// with the same output: the two builds share the verification code, and
// the one a laptop runs must be the one the manager runs.
func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(cliBin, args...)
	cmd.Env = isolatedEnv(t)
	res := runCommand(t, cmd)
	full := exec.Command(chartproofBin, args...)
	full.Env = cmd.Env
	if again := runCommand(t, full); again.code != res.code || again.stdout != res.stdout {
		t.Errorf("the CLI and full builds disagree on chartproof %s:\nCLI build: %s\nfull build: %s", strings.Join(args, " "), res, again)
	}
	return res
}

// runCommand runs cmd to completion (at most 2 minutes) in its own process
// group and returns its exit code and output. It fails the test only when
// the command cannot run at all.
func runCommand(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("%s %s: timed out after 2m\nstdout:\n%s\nstderr:\n%s", cmd.Path, strings.Join(cmd.Args[1:], " "), &stdout, &stderr)
	}
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.ExitCode() >= 0:
		res.code = exitErr.ExitCode()
	default:
		t.Fatalf("%s %s: %v\n%s", cmd.Path, strings.Join(cmd.Args[1:], " "), err, res)
	}
	return res
}

// freeAddr returns a loopback host:port nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// waitFor polls cond until it reports true, or fails the test after
// timeout with cond's last description of what it saw. When p is not nil
// and exits meanwhile, it fails at once.
func waitFor(t *testing.T, timeout time.Duration, what string, p *process, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, seen := cond()
		if ok {
			return
		}
		last = seen
		if p != nil && p.exited() {
			t.Fatalf("waiting for %s: %s exited (%v); last seen: %s\noutput:\n%s", what, p.name, p.err, last, p.out.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last seen: %s", timeout, what, last)
		}
		time.Sleep(50 * time.Millisecond) // polling interval of a condition wait
	}
}

// waitHTTP waits until GET url answers 200.
func waitHTTP(t *testing.T, timeout time.Duration, url string, p *process) {
	t.Helper()
	waitFor(t, timeout, "GET "+url+" to answer 200", p, func() (bool, string) {
		code, _, err := httpGet(url)
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusOK, fmt.Sprintf("status %d", code)
	})
}

// httpGet fetches url on loopback, without proxies.
func httpGet(url string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	c := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, body, err
}

// stopAPIServer stops the test API server; etcd keeps running. Unless the
// test starts it again with startAPIServer, it is started again when the
// test ends, for the tests that follow.
func stopAPIServer(t *testing.T) {
	t.Helper()
	// A status write of testworkload's in flight holds the API server's
	// graceful shutdown: it stops first, and starts again with the server.
	stopRollouts()
	if err := testEnv.ControlPlane.APIServer.Stop(); err != nil {
		t.Fatalf("stopping kube-apiserver: %v", err)
	}
	t.Cleanup(func() {
		if err := healthz(); err != nil {
			startAPIServer(t)
		}
	})
}

// startAPIServer starts the API server stopAPIServer stopped, on the same
// port, with the same certificates and service-account keys and the same
// etcd, and waits until it answers.
func startAPIServer(t *testing.T) {
	t.Helper()
	if err := testEnv.ControlPlane.APIServer.Start(); err != nil {
		t.Fatalf("starting kube-apiserver again: %v", err)
	}
	if err := healthz(); err != nil {
		t.Fatalf("kube-apiserver started again: %v", err)
	}
	if err := startRollouts(); err != nil {
		t.Fatal(err)
	}
}

// stopRollouts stops what startRollouts started.
var stopRollouts = func() {}

// startRollouts makes the Deployments of the test API server available as
// they would be (internal/testworkload) until stopRollouts.
func startRollouts() error {
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := testworkload.Start(ctx, restConfig); err != nil {
		cancel()
		return err
	}
	stopRollouts = cancel
	return nil
}

// healthz asks the API server, as its admin, whether it is healthy.
func healthz() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := clientset.Discovery().RESTClient().Get().AbsPath("/healthz").DoRaw(ctx)
	return err
}

// distribution is a CNCF distribution registry process on loopback.
type distribution struct {
	Host   string // 127.0.0.1:port
	proc   *process
	config string // its configuration file: address and storage directory
}

// startRegistry starts the distribution registry binary on a free loopback
// port with filesystem storage in a temporary directory, and waits until
// GET /v2/ answers 200. It is stopped when the test ends.
func startRegistry(t *testing.T) *distribution {
	t.Helper()
	dir := t.TempDir()
	host := freeAddr(t)
	config := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "storage"), host)
	configPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &distribution{Host: host, config: configPath}
	d.start(t)
	return d
}

// start runs the registry process with d's configuration and waits until
// GET /v2/ answers 200.
func (d *distribution) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(tools.registry, "serve", d.config)
	cmd.Env = isolatedEnv(t)
	d.proc = startProcess(t, "registry "+d.Host, cmd)
	waitHTTP(t, 30*time.Second, "http://"+d.Host+"/v2/", d.proc)
}

// stop stops the registry process; start starts it again on the same
// address with the same storage.
func (d *distribution) stop() {
	_ = d.proc.stop(10 * time.Second) // a registry stopped by a signal exits non-zero
}
