// Package loopback has what hack/demo and hack/bench need to run servers
// on this machine: a free port, and a wait until a server answers.
package loopback

import (
	"fmt"
	"net"
	"net/http"
	"time"
)

// FreePort returns a TCP port of 127.0.0.1 that nothing listens on now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitHTTP polls url until it answers 200, for at most timeout.
func WaitHTTP(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer 200 within %s (last error: %v)", url, timeout, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a server that is starting
	}
}
