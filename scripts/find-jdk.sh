# Sourced by ./bdserve and ./run-tests: sets JAVA_HOME to a JDK >= 25 or exits with a clear message.
bdserve_jdk_major() { "$1/bin/java" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2; exit}'; }
bdserve_find_jdk() {
  local c
  for c in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/java-25-openjdk-amd64 \
           /usr/lib/jvm/*25* /usr/lib/jvm/*2[6-9]* /opt/java/* /opt/jdk* "$HOME"/.sdkman/candidates/java/* \
           /Library/Java/JavaVirtualMachines/*/Contents/Home; do
    [ -n "$c" ] && [ -x "$c/bin/java" ] && [ -x "$c/bin/javac" ] || continue
    local v; v=$(bdserve_jdk_major "$c")
    if [ -n "$v" ] && [ "${v%%.*}" -ge 25 ] 2>/dev/null; then export JAVA_HOME="$c"; return 0; fi
  done
  echo "bdserve: no JDK >= 25 found (tried JAVA_HOME and /usr/lib/jvm, /opt, ~/.sdkman). Install Temurin 25 and set JAVA_HOME to it." >&2
  exit 1
}
bdserve_find_jdk
