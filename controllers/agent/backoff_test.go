package agent

import (
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	base, max := time.Second, 5*time.Minute
	for _, c := range []struct {
		failures int
		want     time.Duration
	}{
		{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {9, 256 * time.Second},
		{10, 5 * time.Minute}, {1000, 5 * time.Minute},
	} {
		if got := backoffDelay(c.failures, base, max); got != c.want {
			t.Errorf("backoffDelay(%d) = %s, want %s", c.failures, got, c.want)
		}
	}
}

func TestHoldBackoff(t *testing.T) {
	now := time.Unix(1000, 0)
	failed := backoff{failures: 2, until: now.Add(2 * time.Second), generation: 3}
	for _, c := range []struct {
		name       string
		e          backoff
		generation int64
		retry      retryRequest
		want       time.Duration
	}{
		{"inside the backoff: hold, whatever event woke the Bottle", failed, 3, retryRequest{}, 2 * time.Second},
		{"a new generation asks for something new", failed, 4, retryRequest{}, 0},
		{"a retry is asked for", failed, 3, retryRequest{Token: "t"}, 0},
		{"the backoff is over", backoff{failures: 2, until: now, generation: 3}, 3, retryRequest{}, 0},
		{"no failure", backoff{}, 3, retryRequest{}, 0},
	} {
		if got := holdBackoff(c.e, c.generation, c.retry, now); got != c.want {
			t.Errorf("%s: holdBackoff = %s, want %s", c.name, got, c.want)
		}
	}
}
