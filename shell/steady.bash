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
function __steady_run {
    case "${STEADY_DISABLE:-}" in
    '' | 0 | false | no | off) \command @STEADY@ -- "$@" ;;
    *) \command "$@" ;;
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

# =============================================================================
#
# To route installs through steady, add this to your configuration (usually
# ~/.bashrc):
#
#   eval "$(steady init bash)"
#
# Non-interactive shells (CI) read no rc file; write the script to a file and
# point BASH_ENV at it instead.
