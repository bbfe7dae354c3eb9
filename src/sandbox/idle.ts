/**
 * Idle stop without a daemon on the host: a sandbox made with it runs this watcher as the command of
 * its PID 1 (tini, under sbx-init) instead of `sleep infinity`. Every step it reads /proc: a process
 * whose parent is 0 (other than PID 1) was started by the engine's exec, that is an sbx session
 * (run, shell, exec, an attached tmux client); the CPU time of every other process (a detached agent
 * in tmux, a build) is summed. Once no session is attached and that sum has grown by less than 2% of
 * one CPU per step for `seconds`, the watcher exits 0, tini with it, and the engine stops the
 * container. Reattaching (sbx run) starts it again, as after `sbx stop`; `sbx stop` still ends it at
 * once (SIGTERM reaches the watcher's group through tini -g, so it exits 143, never 0).
 */
export const IDLE_WATCHER = [
  'idle=$1',
  'step=$(( idle / 4 )); [ "$step" -le 60 ] || step=60; [ "$step" -ge 1 ] || step=1',
  'hz=$(getconf CLK_TCK 2>/dev/null || echo 100)',
  'limit=$(( step * hz * 2 / 100 )); [ "$limit" -ge 1 ] || limit=1',
  'me=$$ last=$(date +%s) prev=-1',
  'echo "sbx: this sandbox stops itself after $idle s without a session or CPU use"',
  'while :; do',
  '  sleep "$step"',
  '  attached=0 ticks=0',
  '  for stat in /proc/[0-9]*/stat; do',
  '    { read -r line < "$stat"; } 2>/dev/null || continue',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
  '    pid=${line%% *}',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
  '    set -- ${line##*) }',
  '    [ "$pid" = 1 ] || [ "$pid" = "$me" ] || [ "$2" = "$me" ] && continue',
  '    [ "$2" = 0 ] && attached=1',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
  '    ticks=$(( ticks + ${12} + ${13} ))',
  '  done',
  '  now=$(date +%s)',
  '  delta=$(( ticks - prev )); [ "$delta" -ge 0 ] || delta=$(( -delta ))',
  '  if [ "$attached" = 1 ] || [ "$prev" -lt 0 ] || [ "$delta" -gt "$limit" ]; then last=$now; fi',
  '  prev=$ticks',
  '  if [ $(( now - last )) -ge "$idle" ]; then',
  '    echo "sbx: idle since $(date -u -d "@$last" +%FT%TZ 2>/dev/null || echo "$last"); stopping"',
  '    exit 0',
  '  fi',
  'done',
].join('\n');

/** The container command of a sandbox that stops itself after `seconds` idle. */
export const idleStopCommand = (seconds: number): string[] => [
  'bash',
  '-c',
  IDLE_WATCHER,
  'sbx-idle',
  String(seconds),
];
