package oci

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/chartproof/chartproof/internal/limits"
)

// Options configures a Client. The zero value is a safe default.
type Options struct {
	// PlainHTTP talks plain HTTP to the registry. Zero: HTTPS only, for the
	// authentication handshake too, and never a fallback to HTTP.
	PlainHTTP bool
	// Transport carries every request. Zero: a clone of http.DefaultTransport.
	Transport http.RoundTripper
	// Keychain resolves the registry's credentials. Zero: anonymous.
	Keychain authn.Keychain
	// UserAgent is sent with every request. Zero: "chartproof".
	UserAgent string
	// RequestTimeout bounds one request, its body read included, so a
	// registry that stalls or drips cannot hold a caller whose context has
	// no deadline. Zero: DefaultRequestTimeout.
	RequestTimeout time.Duration
}

// DefaultRequestTimeout is the RequestTimeout of a zero Options: enough for
// a capped chart layer on a slow link.
const DefaultRequestTimeout = time.Minute

// Client reads manifests, blobs, tags and referrers from OCI registries. It
// is safe for concurrent use. It keeps one authenticated session per
// repository it has read, so the requests of one verification share the
// registry ping and the token exchange; make a Client per verification (or
// per reconcile), not one for the life of the process, so credentials
// changed in a Secret are picked up.
type Client struct {
	plainHTTP bool
	transport http.RoundTripper
	keychain  authn.Keychain
	timeout   time.Duration

	mu       sync.Mutex
	sessions map[string]*session // by Repository.String()
}

// NewClient returns a Client configured by opts.
func NewClient(opts Options) *Client {
	t := opts.Transport
	if t == nil {
		t = http.DefaultTransport
		if dt, ok := t.(*http.Transport); ok {
			t = dt.Clone()
		}
	}
	if !opts.PlainHTTP {
		t = httpsOnly{next: t}
	}
	return &Client{
		plainHTTP: opts.PlainHTTP,
		transport: transport.NewUserAgent(t, cmp.Or(opts.UserAgent, "chartproof")),
		keychain:  opts.Keychain,
		timeout:   cmp.Or(opts.RequestTimeout, DefaultRequestTimeout),
	}
}

// httpsOnly refuses every request that is not HTTPS: go-containerregistry
// pings loopback and private-network registries over HTTP as well, and a
// registry or token server may redirect to HTTP.
type httpsOnly struct {
	next http.RoundTripper
}

func (t httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("refusing %s request to %s: only https is allowed", req.URL.Scheme, req.URL.Host)
	}
	return t.next.RoundTrip(req)
}

// plainHTTPTo refuses HTTPS requests to a registry marked plain HTTP:
// go-containerregistry pings such a registry over HTTPS first and falls
// back to HTTP, so each session would open a connection for a TLS handshake
// the registry cannot answer. A token server on another host keeps its
// scheme.
type plainHTTPTo struct {
	host string
	next http.RoundTripper
}

func (t plainHTTPTo) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "https" && req.URL.Host == t.host {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("refusing https request to %s: it is reached over plain HTTP (chart.insecure)", t.host)
	}
	return t.next.RoundTrip(req)
}

// manifestAccept asks for every manifest type a registry may hold, so that
// what it serves is the stored bytes and the caller decides about the type.
const manifestAccept = string(types.OCIManifestSchema1) + ", " +
	string(types.OCIImageIndex) + ", " +
	string(types.DockerManifestSchema2) + ", " +
	string(types.DockerManifestList)

// session is an authenticated connection to one repository, for the
// duration of one call.
type session struct {
	client *http.Client
	scheme string
	repo   Repository
}

// session returns the client's session for repo, authenticating to it with
// pull scope on first use. A failed authentication is not kept.
func (c *Client) session(ctx context.Context, repo Repository) (*session, error) {
	key := repo.String()
	c.mu.Lock()
	s, ok := c.sessions[key]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err := c.newSession(ctx, repo)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.sessions[key]; ok {
		return prev, nil // another call authenticated first
	}
	if c.sessions == nil {
		c.sessions = map[string]*session{}
	}
	c.sessions[key] = s
	return s, nil
}

// newSession authenticates to repo with pull scope.
func (c *Client) newSession(ctx context.Context, repo Repository) (*session, error) {
	ref, err := nameRepository(repo.String(), c.plainHTTP)
	if err != nil {
		return nil, err
	}
	if ref.RegistryStr() != repo.Registry || ref.RepositoryStr() != repo.Path {
		return nil, fmt.Errorf("%w: %q is not normalized; use ParseRepository", ErrInvalidReference, repo)
	}
	scheme := "https"
	if c.plainHTTP {
		scheme = "http"
	}
	auth := authn.Anonymous
	if c.keychain != nil {
		auth, err = authn.Resolve(ctx, c.keychain, ref)
		if err != nil {
			return nil, fmt.Errorf("%w: resolving credentials for %s: %w", ErrUnavailable, repo, err)
		}
	}
	t := c.transport
	if c.plainHTTP {
		t = plainHTTPTo{host: ref.RegistryStr(), next: t}
	}
	rt, err := transport.NewWithContext(ctx, ref.Registry, auth, t, []string{ref.Scope(transport.PullScope)})
	if err != nil {
		sentinel := ErrUnavailable
		var terr *transport.Error
		if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
			sentinel = ErrUnauthorized
		}
		return nil, fmt.Errorf("%w: authenticating to %s: %w", sentinel, repo.Registry, err)
	}
	return &session{client: &http.Client{Transport: rt, Timeout: c.timeout}, scheme: scheme, repo: repo}, nil
}

// url returns the URL of an API endpoint of the session's repository, for
// example url("manifests", "1.0.0").
func (s *session) url(endpoint, ref string) *url.URL {
	p := "/v2/" + s.repo.Path + "/" + endpoint
	if ref != "" {
		p += "/" + ref
	}
	return &url.URL{Scheme: s.scheme, Host: s.repo.Registry, Path: p}
}

// get sends a GET and returns the response when its status is 200 OK. Any
// other status becomes an error wrapping the matching sentinel.
func (s *session) get(ctx context.Context, u *url.URL, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidReference, err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	// Drain a little so the connection can be reused; never more.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, limits.MaxErrorBodyBytes))
	resp.Body.Close()
	return nil, &httpStatusError{code: resp.StatusCode, err: fmt.Errorf("%w: GET %s: status %d", statusError(resp.StatusCode), u, resp.StatusCode)}
}

// httpStatusError is a registry's answer other than 200: err wraps its
// sentinel (statusError), and code is kept for the callers that tell
// statuses apart (noReferrersAPI).
type httpStatusError struct {
	code int
	err  error
}

func (e *httpStatusError) Error() string { return e.err.Error() }
func (e *httpStatusError) Unwrap() error { return e.err }

// statusError maps an HTTP status other than 200 to a sentinel. Anything not
// a clear "absent" or "refused" is inconclusive.
func statusError(code int) error {
	switch code {
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrUnauthorized
	default:
		return ErrUnavailable
	}
}

// readBody reads and closes the body of resp, failing when it is longer
// than max bytes.
func readBody(resp *http.Response, max int64) ([]byte, error) {
	defer resp.Body.Close()
	if resp.ContentLength > max {
		return nil, fmt.Errorf("%w: GET %s: body of %d bytes, cap %d", ErrLimitExceeded, resp.Request.URL, resp.ContentLength, max)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: reading body: %w", ErrUnavailable, resp.Request.URL, err)
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("%w: GET %s: body over %d bytes", ErrLimitExceeded, resp.Request.URL, max)
	}
	return body, nil
}

// nextPage returns the target of the Link header with rel="next", resolved
// against the request. ok is false on the last page. A next page on another
// host or scheme is refused: credentials and trust stay with the registry.
func (s *session) nextPage(resp *http.Response) (next *url.URL, ok bool, err error) {
	for _, header := range resp.Header.Values("Link") {
		for _, link := range strings.Split(header, ",") {
			target, params, _ := strings.Cut(strings.TrimSpace(link), ";")
			if !isRelNext(params) {
				continue
			}
			target = strings.TrimSpace(target)
			if len(target) < 2 || target[0] != '<' || target[len(target)-1] != '>' {
				return nil, false, fmt.Errorf("%w: GET %s: malformed Link header %q", ErrUnavailable, resp.Request.URL, header)
			}
			next, err := resp.Request.URL.Parse(target[1 : len(target)-1])
			if err != nil {
				return nil, false, fmt.Errorf("%w: GET %s: malformed Link header: %w", ErrUnavailable, resp.Request.URL, err)
			}
			if next.Scheme != s.scheme || next.Host != s.repo.Registry {
				return nil, false, fmt.Errorf("%w: GET %s: Link header leads to another origin %s://%s", ErrUnavailable, resp.Request.URL, next.Scheme, next.Host)
			}
			return next, true, nil
		}
	}
	return nil, false, nil
}

// isRelNext reports whether the parameters of one Link value hold rel="next".
func isRelNext(params string) bool {
	for _, param := range strings.Split(params, ";") {
		key, value, _ := strings.Cut(strings.TrimSpace(param), "=")
		if !strings.EqualFold(strings.TrimSpace(key), "rel") {
			continue
		}
		for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(value), `"`)) {
			if strings.EqualFold(rel, "next") {
				return true
			}
		}
	}
	return false
}

// manifest fetches the manifest at ref, a tag or a digest, and returns it
// with its computed digest. When want is set the body must hash to it.
func (s *session) manifest(ctx context.Context, ref, want string) (body []byte, digest string, err error) {
	resp, err := s.get(ctx, s.url("manifests", ref), manifestAccept)
	if err != nil {
		return nil, "", err
	}
	body, err = readBody(resp, limits.MaxManifestBytes)
	if err != nil {
		return nil, "", err
	}
	digest = digestOf(body)
	if want != "" && digest != want {
		return nil, "", fmt.Errorf("%w: manifest %s of %s: body hashes to %s", ErrDigestMismatch, want, s.repo, digest)
	}
	return body, digest, nil
}
