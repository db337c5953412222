package main

import rulescli "github.com/junction-sre/junction/rules/cli"

func init() { extraCommands = append(extraCommands, rulescli.NewCommand) }
