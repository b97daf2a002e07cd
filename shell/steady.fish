# =============================================================================
#
# steady shell integration for fish, printed by `steady init fish`.
#
# Defines one function per wrapped installer, so that typing
# `uv pip install x` runs `steady -- uv pip install x`: the install waits for
# its cache lock, a hung attempt is killed with its whole process tree, and a
# failed one is retried. steady execs read-only subcommands (`uv run`,
# `pip list`) at once, so they behave exactly as without it.
#
# `command uv ...` bypasses a function; STEADY_DISABLE=1 turns every function
# into a plain call. Sourcing this again only redefines the same functions,
# and it defines nothing else: no variables, no output.
#

# =============================================================================
#
# Helper
#

# Runs $argv through steady, or plainly when STEADY_DISABLE is set (read at
# each call, so `set -gx STEADY_DISABLE 1` works in a shell that already
# sourced this).
function __steady_run
    switch "$STEADY_DISABLE"
        case '' 0 false no off
            command @STEADY@ -- $argv
        case '*'
            command $argv
    end
end

# =============================================================================
#
# Wrapped commands
#
# Each function has the command's own name, so the command's completions,
# which fish loads by name, keep working.
#

# @BEGIN_WRAPPER@
function @NAME@ --description '@NAME@, through steady'
    __steady_run @NAME@ $argv
end
# @END_WRAPPER@

# =============================================================================
#
# To route installs through steady, add this to your configuration (usually
# ~/.config/fish/config.fish):
#
#   steady init fish | source
