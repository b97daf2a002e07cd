# shellcheck shell=bash

# =============================================================================
#
# steady shell integration for zsh, printed by `steady init zsh`.
#
# Defines one function per wrapped installer, so that typing
# `uv pip install x` runs `steady -- uv pip install x`: the install waits for
# its cache lock, a hung attempt is killed with its whole process tree, and a
# failed one is retried. steady execs read-only subcommands (`uv run`,
# `pip list`) at once, so they behave exactly as without it.
#
# `command uv ...` bypasses a function; STEADY_DISABLE=1 turns every function
# into a plain call. Sourcing this again only redefines the same functions,
# and it defines nothing else: no parameters, no options, no output.
#

# =============================================================================
#
# Helper
#

# Runs "$@" through steady, or plainly when STEADY_DISABLE is set (read at each
# call, so `export STEADY_DISABLE=1` works in a shell that already sourced this).
# Like steady's own boolean variables, any other value is refused (exit 125)
# rather than guessed.
function __steady_run {
    case "${STEADY_DISABLE:-}" in
    '' | 0 | false | no | off | FALSE | NO | OFF | False | No | Off)
        \command @STEADY@ -- "$@"
        ;;
    1 | true | yes | on | TRUE | YES | ON | True | Yes | On)
        \command "$@"
        ;;
    *)
        # shellcheck disable=SC2016 # the backquotes are words, not a command
        \command printf 'steady: STEADY_DISABLE must be 1 or 0, got `%s`\nhint: export STEADY_DISABLE=1 to run installers without steady, or unset it\n' "${STEADY_DISABLE}" >&2
        return 125
        ;;
    esac
}

# =============================================================================
#
# Wrapped commands
#
# Each function has the command's own name, so the command's completions,
# which compinit keys by name (`compdef _uv uv`), keep working.
# `function NAME {` rather than `NAME() {`: zsh refuses the latter when the
# user has an alias of the same name.
#

# @BEGIN_WRAPPER@
function @NAME@ {
    __steady_run @NAME@ "$@"
}
# @END_WRAPPER@

# A Python interpreter (opt-in: `--wrap default,python3`): only `-m` with an
# installer's module (`python3 -m pip install x`) goes through steady; every
# other call is the interpreter itself, with no steady in between.
# @BEGIN_PYTHON_WRAPPER@
function @NAME@ {
    case "${1-}:${2-}" in
    @MODULE_PATTERNS@) __steady_run @NAME@ "$@" ;;
    *) \command @NAME@ "$@" ;;
    esac
}
# @END_PYTHON_WRAPPER@

# =============================================================================
#
# To route installs through steady, add this to your configuration (usually
# ~/.zshrc, or ~/.zshenv to cover non-interactive zsh too):
#
#   eval "$(steady init zsh)"
