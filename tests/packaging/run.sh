#!/usr/bin/env bash
# What a plugin author does with the published packages, from scratch: packs Kong.PluginServer,
# Kong.PluginServer.Testing and Kong.PluginServer.Templates into a local feed, installs the template from its
# package (into a private template hive), creates a plugin from it in a temporary folder, publishes it with
# NativeAOT (no warning allowed), runs its -dump (a JSON list Kong accepts) and its generated tests.
#
#   bash tests/packaging/run.sh [LOG_DIR]
#
# The generated tests' "Passed!/Failed!" summary is written to LOG_DIR/template-tests.txt for tests/run-all.sh.
# Exit 0 when everything passed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
logs=${1:-$(mktemp -d)}
mkdir -p "$logs"
work=$(mktemp -d /tmp/kong-plugin-template.XXXXXX)
trap 'rm -rf "$work"' EXIT
feed=$work/feed

# the one package version (build/Package.props) is the template's default, or a new project would not restore
version=$(sed -n 's:.*<Version[^>]*>\(.*\)</Version>.*:\1:p' "$root/build/Package.props" | head -n 1)
template_default=$(jq -r '.symbols.kongPluginServerVersion.defaultValue' "$root/templates/kong-plugin/.template.config/template.json")
if [ "$version" != "$template_default" ]; then
  echo "packaging: the template's default package version $template_default differs from build/Package.props' $version" >&2
  exit 1
fi

echo "packing $version into $feed"
for p in src/Kong.PluginServer src/Kong.PluginServer.Testing templates/Kong.PluginServer.Templates.csproj; do
  dotnet pack "$root/$p" -c Release --nologo -v q -clp:ErrorsOnly -o "$feed" >/dev/null
done
ls "$feed"

# packages of this version restored by an earlier run must not stand in for the ones just packed
cache=$(dotnet nuget locals global-packages -l | sed 's/^global-packages: //')
rm -rf "$cache/kong.pluginserver" "$cache/kong.pluginserver.testing"

hive=$work/hive
dotnet new install "$feed/Kong.PluginServer.Templates.$version.nupkg" --debug:custom-hive "$hive" >/dev/null
cd "$work"
dotnet new kong-plugin -n HelloKong --pluginName hello-kong -o HelloKong --debug:custom-hive "$hive"
cat > HelloKong/nuget.config <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
</configuration>
XML

echo "publishing HelloKong with NativeAOT"
dotnet publish HelloKong/HelloKong -c Release -r linux-x64 --nologo -o "$work/out" > "$logs/template-publish.txt" 2>&1 \
  || { tail -n 40 "$logs/template-publish.txt"; echo "packaging: publish failed"; exit 1; }
if grep -E ': warning [A-Z]+[0-9]+' "$logs/template-publish.txt"; then
  echo "packaging: the new plugin publishes with warnings"; exit 1
fi
[ -x "$work/out/hello-kong" ] || { echo "packaging: no executable out/hello-kong"; exit 1; }

echo "checking -dump"
"$work/out/hello-kong" -dump > "$work/dump.json"
jq -e '(.Protocol | type == "string") and (.Plugins | length == 1) and .Plugins[0].Name == "hello-kong"
       and (.Plugins[0].Schema.fields | map(keys[0]) | index("config") != null)' "$work/dump.json" >/dev/null \
  || { cat "$work/dump.json"; echo "packaging: -dump is not the schema Kong expects"; exit 1; }
jq -c '.Plugins[0] | {Name, Phases, Priority, Version}' "$work/dump.json"

echo "running the generated tests"
dotnet test HelloKong --nologo 2>&1 | tee "$logs/template-tests.txt"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || { echo "packaging: the generated tests failed"; exit 1; }
echo "packaging: the template's plugin publishes, dumps and passes its tests"
