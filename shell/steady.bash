# shellcheck shell=bash

# =============================================================================
#
# steady shell integration for bash, printed by `steady init bash`.
#
# Defines one function per wrapped installer, so that typing
# `uv pip install x` runs `steady -- uv pip install x`: the install waits for
# its cache lock, a hung attempt is killed with its whole process tree, and a
# failed one is retried. steady execs read-only subcommands (`uv run`,
# `pip list`) at once, so they behave exactly as without it.
#
# `command uv ...` bypasses a function; STEADY_DISABLE=1 turns every function
# into a plain call. Sourcing this again only redefines the same functions,
# and it defines nothing else: no variables, no options, no output.
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
# which bash keys by name, keep working. `function NAME {` rather than
# `NAME() {`, so that a user's alias of the same name is not expanded here.
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
# ~/.bashrc):
#
#   eval "$(steady init bash)"
#
# Non-interactive shells (CI) read no rc file; write the script to a file and
# point BASH_ENV at it instead.
