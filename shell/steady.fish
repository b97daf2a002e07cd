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
# sourced this). Like steady's own boolean variables, any other value is
# refused (exit 125) rather than guessed.
function __steady_run
    switch (string lower -- "$STEADY_DISABLE")
        case '' 0 false no off
            command @STEADY@ -- $argv
        case 1 true yes on
            command $argv
        case '*'
            printf 'steady: STEADY_DISABLE must be 1 or 0, got `%s`\nhint: set -gx STEADY_DISABLE 1 to run installers without steady, or set -e STEADY_DISABLE\n' "$STEADY_DISABLE" >&2
            return 125
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

# A Python interpreter (opt-in: `--wrap default,python3`): only `-m` with an
# installer's module (`python3 -m pip install x`) goes through steady; every
# other call is the interpreter itself, with no steady in between.
# @BEGIN_PYTHON_WRAPPER@
function @NAME@ --description '@NAME@, with -m installers through steady'
    if test (count $argv) -ge 2; and test "$argv[1]" = -m; and contains -- $argv[2] @MODULE_WORDS@
        __steady_run @NAME@ $argv
    else
        command @NAME@ $argv
    end
end
# @END_PYTHON_WRAPPER@

# =============================================================================
#
# To route installs through steady, add this to your configuration (usually
# ~/.config/fish/config.fish):
#
#   steady init fish | source
