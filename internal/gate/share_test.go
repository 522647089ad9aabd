package gate

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestShareWaiterLeavesOnItsDeadline: a caller sharing a run that is still
// going stops waiting when its own context ends; its control, the run's
// first caller, whose context lives, gets the result.
func TestShareWaiterLeavesOnItsDeadline(t *testing.T) {
	c := NewCache(time.Minute)
	release, started := make(chan struct{}), make(chan struct{})
	first := make(chan any, 1)
	go func() {
		v, _ := c.share(context.Background(), "k", func() (any, error) {
			close(started)
			<-release
			return "result", nil
		})
		first <- v
	}()
	<-started

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.share(ctx, "k", func() (any, error) { t.Error("a second run of the same key"); return nil, nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("waiter with an ended context: error %v, want context.Canceled", err)
	}

	close(release)
	if v := <-first; v != "result" {
		t.Errorf("first caller got %v, want the run's result", v)
	}
}
