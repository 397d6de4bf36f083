package main

import (
	"flag"
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/bot-bottle/bottle-controller/internal/steplog"
)

// stepLogOptions configure where the agent keeps each provisioning step's
// full output (kubectl bottle logs).
type stepLogOptions struct {
	dir   string
	limit string
}

func (s *stepLogOptions) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.dir, "step-log-dir", "/var/lib/bottle-agent/step-logs", "Directory keeping each provisioning step's full output on this node (kubectl bottle logs); empty keeps none.")
	fs.StringVar(&s.limit, "step-log-limit", "16Mi", "Bytes kept per step (a quantity: 16Mi, 1Gi); the oldest bytes are dropped first.")
}

func (s *stepLogOptions) limitBytes() (int64, error) {
	q, err := resource.ParseQuantity(s.limit)
	if err != nil || q.Value() < 1 {
		return 0, fmt.Errorf("--step-log-limit must be a positive quantity such as 16Mi, not %q", s.limit)
	}
	return q.Value(), nil
}

func (s *stepLogOptions) validate() error {
	_, err := s.limitBytes()
	return err
}

// open returns the store, or nil when --step-log-dir is empty.
func (s *stepLogOptions) open() (*steplog.Store, error) {
	if s.dir == "" {
		return nil, nil
	}
	limit, err := s.limitBytes()
	if err != nil {
		return nil, err
	}
	return steplog.New(s.dir, limit)
}
