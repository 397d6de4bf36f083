package execapi

import (
	"net/http"
	"strconv"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// sessionRetryAfter is what a refused client is told to wait.
const sessionRetryAfter = 5

// sessionLimiter counts the sessions a server holds open, in total and per
// user, so that one user (or a flood of them) cannot take every session
// slot, goroutine and guest process of a node.
type sessionLimiter struct {
	max, maxPerUser int
	node            string

	mu     sync.Mutex
	total  int
	byUser map[string]int
}

func newSessionLimiter(node string, max, maxPerUser int) *sessionLimiter {
	return &sessionLimiter{node: node, max: max, maxPerUser: maxPerUser, byUser: map[string]int{}}
}

// acquire takes a slot for user, or answers why not (429). The caller runs
// release when the session ends.
func (l *sessionLimiter) acquire(user string) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.total >= l.max:
		return nil, tooManySessions("node %q already serves %d sessions (exec, attach, log follows), its limit (--exec-max-sessions); try again later",
			l.node, l.total)
	case l.byUser[user] >= l.maxPerUser:
		return nil, tooManySessions("user %q already has %d sessions (exec, attach, log follows) open through node %q, the per-user limit (--exec-max-sessions-per-user); close one or try again later",
			user, l.byUser[user], l.node)
	}
	l.total++
	l.byUser[user]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.total--
			if l.byUser[user]--; l.byUser[user] == 0 {
				delete(l.byUser, user)
			}
		})
	}, nil
}

func tooManySessions(format string, args ...any) error {
	err := statusError(http.StatusTooManyRequests, metav1.StatusReasonTooManyRequests, format, args...)
	err.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: sessionRetryAfter}
	return err
}

// writeTooMany answers 429 with a Retry-After header, as the API server does.
func writeTooMany(w http.ResponseWriter, err error) {
	w.Header().Set("Retry-After", strconv.Itoa(sessionRetryAfter))
	writeAPIStatus(w, err)
}
