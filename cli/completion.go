package cli

import (
	"fmt"

	ucli "github.com/urfave/cli/v2"
)

// Shell completion: the app is built with EnableBashCompletion, so
// `stratum ... --generate-bash-completion` lists the words that may come
// next (commands, or flags after a "-"); these scripts ask it on every TAB.
// They run the command line typed so far as an argument vector, never
// through eval.

const bashCompletion = `# bash completion for stratum: source <(stratum completion bash)
_stratum_complete() {
  local cur="${COMP_WORDS[COMP_CWORD]}"
  local words=("${COMP_WORDS[@]:0:COMP_CWORD}")
  local opts
  if [[ "$cur" == -* ]]; then
    opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
}
complete -o bashdefault -o default -F _stratum_complete stratum
`

const zshCompletion = `#compdef stratum
# zsh completion for stratum: source <(stratum completion zsh), or save it as
# _stratum in a directory on $fpath
_stratum() {
  local -a opts
  local cur=${words[-1]}
  if [[ "$cur" == -* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _stratum stratum
`

func completionCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: source <(stratum completion bash), or zsh",
		ArgsUsage: "bash|zsh",
		Action: func(c *ucli.Context) error {
			scripts := map[string]string{"bash": bashCompletion, "zsh": zshCompletion}
			script, ok := scripts[c.Args().First()]
			if c.NArg() != 1 || !ok {
				return usagef("completion takes one argument, bash or zsh")
			}
			_, err := fmt.Fprint(c.App.Writer, script)
			return err
		},
	}
}
