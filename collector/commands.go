package main

import (
	"github.com/junction-sre/junction/analyze"
	rulescli "github.com/junction-sre/junction/rules/cli"
)

func init() { extraCommands = append(extraCommands, rulescli.NewCommand, analyze.NewCommand) }
