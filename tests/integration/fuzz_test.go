// SPDX-License-Identifier: Apache-2.0

package integration

import (
	"sync"

	"github.com/nwbpf/nwbpf/loader"
)

// fuzzRun is the private classifier the differential fuzz test runs
// frames through, one per test process (fuzz workers are processes).
var fuzzRun struct {
	once sync.Once
	tr   *loader.TestRun
	err  error
}
