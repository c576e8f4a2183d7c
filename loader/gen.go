// SPDX-License-Identifier: Apache-2.0

package loader

// The compiler and its flags come from the Makefile (make generate); the
// include paths are the classifier's own.
//go:generate go tool bpf2go -target bpfel -no-global-types nwbpf ../bpf/classifier.c -- -nostdinc -I../bpf/include -I../bpf
