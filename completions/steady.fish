# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_steady_global_optspecs
    string join \n timeout= kill-after= stall= retries= backoff= backoff-max= retry-on-exit= retry-on-output= on-retry= deadline= lock-timeout= no-lock lock-dir= shared lock= lock-url= lock-namespace= cache= installer= clean= mitigate= report= output= env= v/verbose q/quiet h/help V/version
end

function __fish_steady_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_steady_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_steady_using_subcommand
    set -l cmd (__fish_steady_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c steady -n "__fish_steady_needs_command" -l timeout -d 'Wall-clock limit of one attempt (0 = none)' -r
complete -c steady -n "__fish_steady_needs_command" -l kill-after -d 'Grace between TERM and KILL when an attempt is stopped (2s fits GitHub Actions, which kills everything 2.5s after its TERM)' -r
complete -c steady -n "__fish_steady_needs_command" -l stall -d 'Kill an attempt whose whole process tree printed nothing, used almost no CPU and moved no byte (reads, writes, network) for DUR (0 = off) [default: 45s when stdin is not a terminal, else off]' -r
complete -c steady -n "__fish_steady_needs_command" -l retries -d 'Retries after a retryable failure (0 to 100)' -r
complete -c steady -n "__fish_steady_needs_command" -l backoff -d 'First back-off delay before a retry; doubles each retry, capped at --backoff-max, with jitter' -r
complete -c steady -n "__fish_steady_needs_command" -l backoff-max -d 'The longest back-off delay between two attempts' -r
complete -c steady -n "__fish_steady_needs_command" -l retry-on-exit -d 'Also retry when the command exits with one of these codes, even where steady would stop (comma-separated, e.g. 3,75; 128+N for a death by signal N)' -r
complete -c steady -n "__fish_steady_needs_command" -l retry-on-output -d 'Also retry a failed attempt whose output matches this regular expression, even where steady would stop (repeatable; matched against the last 64 KiB of each stream, `^` and `$` at line ends)' -r
complete -c steady -n "__fish_steady_needs_command" -l on-retry -d 'A shell command run before each retry, after the clean, with STEADY_ATTEMPT (the failed attempt), STEADY_CLASS and STEADY_EXIT set; its failure is reported, not fatal' -r -f -a "(__fish_complete_command)"
complete -c steady -n "__fish_steady_needs_command" -l deadline -d 'Budget for the whole run: lock wait, attempts and back-off (0 = none)' -r
complete -c steady -n "__fish_steady_needs_command" -l lock-timeout -d 'Longest wait for the lock; 0 fails at once if it is held [default: wait]' -r
complete -c steady -n "__fish_steady_needs_command" -l lock-dir -d 'Where fallback lock files go when the cache itself cannot be locked' -r -F
complete -c steady -n "__fish_steady_needs_command" -l lock -d 'Also lock this path, e.g. a venv or node_modules (repeatable; STEADY_LOCK takes a colon-separated list). All locks are taken in one order, so runs cannot deadlock' -r -F
complete -c steady -n "__fish_steady_needs_command" -l lock-url -d 'Also take the cache\'s lock in PostgreSQL, for several machines sharing one cache: postgres://user[:password]@host[:port]/db (?host=/dir for a Unix socket; no TLS). The password may also come from PGPASSWORD' -r
complete -c steady -n "__fish_steady_needs_command" -l lock-namespace -d 'Name of the cache\'s lock in the --lock-url database, for machines whose cache paths differ [default: the cache\'s path]' -r
complete -c steady -n "__fish_steady_needs_command" -l cache -d 'The cache directory to lock and clear [default: detected]' -r -F
complete -c steady -n "__fish_steady_needs_command" -l installer -d 'Treat the command as this installer [default: detected]' -r
complete -c steady -n "__fish_steady_needs_command" -l clean -d 'When to clear the cache before a retry' -r -f -a "auto\t'Clear the cache once, after the first failure that a clean could fix'
always\t'Clear the cache before every retry'
never\t'Never clear the cache'"
complete -c steady -n "__fish_steady_needs_command" -l mitigate -d 'Known environment workarounds (qemu emulation, low process limits, after a hang)' -r -f -a "auto\t'Apply the known workarounds whose conditions hold'
off\t'Apply none'"
complete -c steady -n "__fish_steady_needs_command" -l report -d 'Append a JSON record of the run (every attempt, class, action) to FILE, one line per run' -r -F
complete -c steady -n "__fish_steady_needs_command" -l output -d 'When the command\'s output is shown: as it comes, or only if the run finally fails (as chronic does; a stream that is a terminal stays live)' -r -f -a "live\t'As the command writes it'
on-failure\t'Held, and shown only if the run finally fails (every attempt\'s output, in order)'"
complete -c steady -n "__fish_steady_needs_command" -l env -d 'Extra environment for the command (repeatable)' -r
complete -c steady -n "__fish_steady_needs_command" -l no-lock -d 'Do not lock'
complete -c steady -n "__fish_steady_needs_command" -l shared -d 'Take the locks shared (readers of an environment together), not exclusive'
complete -c steady -n "__fish_steady_needs_command" -s v -l verbose -d 'More steady: lines on stderr (STEADY_VERBOSE=1)'
complete -c steady -n "__fish_steady_needs_command" -s q -l quiet -d 'Only errors on stderr (STEADY_QUIET=1)'
complete -c steady -n "__fish_steady_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c steady -n "__fish_steady_needs_command" -s V -l version -d 'Print version'
complete -c steady -n "__fish_steady_needs_command" -a "init" -d 'Print shell functions that run installers through steady'
complete -c steady -n "__fish_steady_needs_command" -a "doctor" -d 'Explain what steady would do with a command, and why, without running it'
complete -c steady -n "__fish_steady_needs_command" -a "status" -d 'List the locks steady holds or waits on for this user, with holders and waiters'
complete -c steady -n "__fish_steady_needs_command" -a "completions" -d 'Print a completion script for steady itself'
complete -c steady -n "__fish_steady_needs_command" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c steady -n "__fish_steady_using_subcommand init" -l wrap -d 'Commands to wrap, comma-separated; `default` stands for every installer\'s own commands. Opt-in: versioned names (pip3.12), run launchers (uvx, npx) and Python interpreters: `--wrap default,python3` sends `python3 -m pip …` through steady and nothing else' -r -f -a "(__fish_complete_command)"
complete -c steady -n "__fish_steady_using_subcommand init" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c steady -n "__fish_steady_using_subcommand doctor" -l explain-output -d 'Explain how steady classifies this failed command\'s output (`-` for stdin): each line a signature matches, which one wins and why, the class and the action. The command after `--` (or --installer) says whose signatures apply' -r -F
complete -c steady -n "__fish_steady_using_subcommand doctor" -l ending -d 'With --explain-output: how the command ended (an exit status, signal:NAME, stall or timeout) [default: 1]' -r
complete -c steady -n "__fish_steady_using_subcommand doctor" -l timeout -d 'Wall-clock limit of one attempt (0 = none)' -r
complete -c steady -n "__fish_steady_using_subcommand doctor" -l kill-after -d 'Grace between TERM and KILL when an attempt is stopped (2s fits GitHub Actions, which kills everything 2.5s after its TERM)' -r
complete -c steady -n "__fish_steady_using_subcommand doctor" -l stall -d 'Kill an attempt whose whole process tree printed nothing, used almost no CPU and moved no byte (reads, writes, network) for DUR (0 = off) [default: 45s when stdin is not a terminal, else off]' -r
complete -c steady -n "__fish_steady_using_subcommand doctor" -l retries -d 'Retries after a retryable failure (0 to 100)' -r
complete -c steady -n "__fish_steady_using_subcommand doctor" -l backoff -d 'First back-off delay before a retry; doubles each retry, capped at --backoff-max, with jitter' -r
complete -c steady -n "__fish_steady_using_subcommand doctor" -l backoff-max -d 'The longest back-off delay between two attempts' -r
complete -c steady -n "__fish_steady_using_subcommand doctor" -l retry-on-exit -d 'Also retry when the command exits with one of these codes, even where steady would stop (comma-separated, e.g. 3,75; 128+N for a death by signal N)' -r
complete -c steady -n "__fish_steady_using_subcommand doctor" -l retry-on-output -d 'Also retry a failed attempt whose output matches this regular expression, even where steady would stop (repeatable; matched against the last 64 KiB of each stream, `^` and `$` at line ends)' -r
complete -c steady -n "__fish_steady_using_subcommand doctor" -l on-retry -d 'A shell command run before each retry, after the clean, with STEADY_ATTEMPT (the failed attempt), STEADY_CLASS and STEADY_EXIT set; its failure is reported, not fatal' -r -f -a "(__fish_complete_command)"
complete -c steady -n "__fish_steady_using_subcommand doctor" -l deadline -d 'Budget for the whole run: lock wait, attempts and back-off (0 = none)' -r
complete -c steady -n "__fish_steady_using_subcommand doctor" -l lock-timeout -d 'Longest wait for the lock; 0 fails at once if it is held [default: wait]' -r
complete -c steady -n "__fish_steady_using_subcommand doctor" -l lock-dir -d 'Where fallback lock files go when the cache itself cannot be locked' -r -F
complete -c steady -n "__fish_steady_using_subcommand doctor" -l lock -d 'Also lock this path, e.g. a venv or node_modules (repeatable; STEADY_LOCK takes a colon-separated list). All locks are taken in one order, so runs cannot deadlock' -r -F
complete -c steady -n "__fish_steady_using_subcommand doctor" -l lock-url -d 'Also take the cache\'s lock in PostgreSQL, for several machines sharing one cache: postgres://user[:password]@host[:port]/db (?host=/dir for a Unix socket; no TLS). The password may also come from PGPASSWORD' -r
complete -c steady -n "__fish_steady_using_subcommand doctor" -l lock-namespace -d 'Name of the cache\'s lock in the --lock-url database, for machines whose cache paths differ [default: the cache\'s path]' -r
complete -c steady -n "__fish_steady_using_subcommand doctor" -l cache -d 'The cache directory to lock and clear [default: detected]' -r -F
complete -c steady -n "__fish_steady_using_subcommand doctor" -l installer -d 'Treat the command as this installer [default: detected]' -r
complete -c steady -n "__fish_steady_using_subcommand doctor" -l clean -d 'When to clear the cache before a retry' -r -f -a "auto\t'Clear the cache once, after the first failure that a clean could fix'
always\t'Clear the cache before every retry'
never\t'Never clear the cache'"
complete -c steady -n "__fish_steady_using_subcommand doctor" -l mitigate -d 'Known environment workarounds (qemu emulation, low process limits, after a hang)' -r -f -a "auto\t'Apply the known workarounds whose conditions hold'
off\t'Apply none'"
complete -c steady -n "__fish_steady_using_subcommand doctor" -l report -d 'Append a JSON record of the run (every attempt, class, action) to FILE, one line per run' -r -F
complete -c steady -n "__fish_steady_using_subcommand doctor" -l output -d 'When the command\'s output is shown: as it comes, or only if the run finally fails (as chronic does; a stream that is a terminal stays live)' -r -f -a "live\t'As the command writes it'
on-failure\t'Held, and shown only if the run finally fails (every attempt\'s output, in order)'"
complete -c steady -n "__fish_steady_using_subcommand doctor" -l env -d 'Extra environment for the command (repeatable)' -r
complete -c steady -n "__fish_steady_using_subcommand doctor" -l no-lock -d 'Do not lock'
complete -c steady -n "__fish_steady_using_subcommand doctor" -l shared -d 'Take the locks shared (readers of an environment together), not exclusive'
complete -c steady -n "__fish_steady_using_subcommand doctor" -s v -l verbose -d 'More steady: lines on stderr (STEADY_VERBOSE=1)'
complete -c steady -n "__fish_steady_using_subcommand doctor" -s q -l quiet -d 'Only errors on stderr (STEADY_QUIET=1)'
complete -c steady -n "__fish_steady_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c steady -n "__fish_steady_using_subcommand status" -l lock-url -d 'Also list the locks in this PostgreSQL server (postgres://user@host:port/db); the password may also come from PGPASSWORD' -r
complete -c steady -n "__fish_steady_using_subcommand status" -l lock-namespace -d 'Name the lock of this namespace in the server\'s list (a key is a hash: only the namespaces and caches this machine knows are shown by name)' -r
complete -c steady -n "__fish_steady_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c steady -n "__fish_steady_using_subcommand completions" -s h -l help -d 'Print help'
complete -c steady -n "__fish_steady_using_subcommand help; and not __fish_seen_subcommand_from init doctor status completions help" -f -a "init" -d 'Print shell functions that run installers through steady'
complete -c steady -n "__fish_steady_using_subcommand help; and not __fish_seen_subcommand_from init doctor status completions help" -f -a "doctor" -d 'Explain what steady would do with a command, and why, without running it'
complete -c steady -n "__fish_steady_using_subcommand help; and not __fish_seen_subcommand_from init doctor status completions help" -f -a "status" -d 'List the locks steady holds or waits on for this user, with holders and waiters'
complete -c steady -n "__fish_steady_using_subcommand help; and not __fish_seen_subcommand_from init doctor status completions help" -f -a "completions" -d 'Print a completion script for steady itself'
complete -c steady -n "__fish_steady_using_subcommand help; and not __fish_seen_subcommand_from init doctor status completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
