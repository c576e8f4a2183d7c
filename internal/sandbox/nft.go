// SPDX-License-Identifier: Apache-2.0

package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// nftPaths are tried when nft is not on PATH (sudo and cron reset it).
var nftPaths = []string{"/usr/sbin/nft", "/sbin/nft"}

// NftBinary returns the path of the nft command (Debian's nftables
// package), or an error saying how to install it.
func NftBinary() (string, error) {
	if p, err := exec.LookPath("nft"); err == nil {
		return p, nil
	}
	for _, p := range nftPaths {
		if p, err := exec.LookPath(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("nft not found (apt-get install nftables)")
}

// Nft runs `nft args...` inside the namespace, with stdin as its standard
// input, and returns its standard output. A child process inherits the
// network namespace of the thread that starts it (and the caller's mount
// namespace).
func (n *NS) Nft(stdin string, args ...string) (string, error) {
	bin, err := NftBinary()
	if err != nil {
		return "", err
	}
	var out, errb bytes.Buffer
	err = n.Do(func() error {
		cmd := exec.Command(bin, args...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Stdout, cmd.Stderr = &out, &errb
		return cmd.Run()
	})
	if err != nil {
		return "", fmt.Errorf("nft %s in netns %s: %w: %s", strings.Join(args, " "), n, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}
