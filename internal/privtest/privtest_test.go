// SPDX-License-Identifier: Apache-2.0

package privtest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// recorder captures what report does instead of ending the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}

func TestReport(t *testing.T) {
	why := errors.New("missing CAP_BPF")
	for _, tc := range []struct {
		name          string
		missing       error
		ci            bool
		skip, failure bool
	}{
		{"privileged", nil, false, false, false},
		{"privileged under CI", nil, true, false, false},
		{"unprivileged skips", why, false, true, false},
		{"unprivileged fails under CI", why, true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t}
			report(r, tc.missing, tc.ci)
			if got := r.skipped != ""; got != tc.skip {
				t.Errorf("skipped = %q, want skip %v", r.skipped, tc.skip)
			}
			if got := r.failed != ""; got != tc.failure {
				t.Errorf("failed = %q, want failure %v", r.failed, tc.failure)
			}
			if tc.skip && !strings.Contains(r.skipped, MakeTarget) {
				t.Errorf("skip message %q does not name %q", r.skipped, MakeTarget)
			}
			if msg := r.skipped + r.failed; tc.missing != nil && !strings.Contains(msg, tc.missing.Error()) {
				t.Errorf("message %q does not give the reason %q", msg, tc.missing)
			}
		})
	}
}

func TestRequire(t *testing.T) {
	Require(t)
	// Require returned: every condition it promises must hold.
	if err := check(false); err != nil {
		t.Fatalf("Require passed but check says: %v", err)
	}
	if ok, err := hasCap(63); err != nil || ok {
		t.Errorf("hasCap(63) = %v, %v; want false, nil (no such capability)", ok, err)
	}
}
