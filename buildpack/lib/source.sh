# shellcheck shell=bash disable=SC2154 # the caller sets the variables listed above
# The source packages, fetched and verified by apt. Sourced by
# buildpack/build-static.sh after common.sh; it defines functions only.
#
# Where the source comes from. apt fetches the source packages with a private
# sources list derived from the system's (each `deb` entry of the running
# release, its -updates and its -security pocket, as `deb-src`) and private
# state and cache directories, so the system's package lists are never
# touched and no root is needed. apt verifies the archive's InRelease
# signature with the keyring the system uses for that archive, the Sources
# index against InRelease, and each downloaded file against Sources;
# dpkg-source then checks the tarballs against the .dsc and applies the
# distribution's patches (security fixes included).
#
# apt runs with a private configuration (APT_CONFIG names a file of this
# build's, so neither the host's APT_CONFIG nor /etc/apt/apt.conf{,.d} apply)
# and with insecure, weak and unauthenticated repositories refused outright;
# only the location of the system's sources is read from the host's apt
# configuration. Every signed index must be within its Valid-Until date, and
# the wolfssl built must be the newest that the signed Sources indexes offer
# (an older one, from a stale or trimmed copy of the archive, is refused).
# Offline, the same chain runs on a copy of the archive (lib/mirror.sh).
#
# The caller sets:
#   scratch         this build's own directory; apt's state goes in $scratch/apt
#   cache           the cache directory; the last verified index lists are
#                   kept in $cache/apt-lists (online builds only)
#   codename        the release's code name (bookworm, noble); os_name its name
#   mirror          empty (the archive), or MEMTUNNEL_SOURCE_MIRROR as given
#   allow_expired   1: accept signed indexes past their Valid-Until, loudly
#   now             the time Valid-Until is checked against, in seconds
#   temps           an array: temporary entries of the cache, which the
#                   caller removes at exit; this file appends to it
# and calls, in this order:
#   source_init     private apt state and configuration: sets apt_opts (the
#                   options of every apt call of the build) and src_list,
#                   exports APT_CONFIG
#   source_list     writes the deb-src list $src_list: the system's pockets
#                   online; from a mirror, its copy of them, once the mirror
#                   is checked (mirror_list; mirror becomes an absolute path)
#   source_update   apt reads and verifies the signed indexes; Valid-Until
#   source_resolve PKG
#                   prints "NAME VERSION DSC-SHA256 DSC-URI" for the source
#                   package apt would fetch
#   source_check_newest PKG VERSION
#                   refuses VERSION if the signed indexes offer a newer PKG
#   source_fetch PKG VERSION
#                   downloads and verifies the source package, unpacks it
#                   into $scratch/src-PKG and prints that path
#
# Every failure goes through die: " !     " lines on stderr naming what failed
# (the index, the file, both versions) and exit status 1. Nothing is built or
# cached after one.

source_init() {
	# apt's state is this build's own; online, the index lists of the last
	# build are copied in (apt then downloads only what changed) and the new
	# ones published back with a rename (publish_lists).
	host_apt_config=${APT_CONFIG:-}
	apt_state=$scratch/apt
	lists_cache=$cache/apt-lists
	mkdir -p "$apt_state/lists/partial" "$apt_state/cache/archives/partial" \
		"$apt_state/sources" "$apt_state/conf.d"
	if [[ -z $mirror && -d $lists_cache ]]; then
		# (Another build may swap the cache meanwhile: a torn copy is dropped.)
		cp -a "$lists_cache/." "$apt_state/lists/" 2>/dev/null || {
			rm -rf "$apt_state/lists"
			mkdir -p "$apt_state/lists/partial"
		}
	fi
	# The configuration apt reads is this file alone: the host's APT_CONFIG,
	# apt.conf and apt.conf.d (where a Check-Valid-Until "false" or an
	# AllowInsecureRepositories "true" may sit) do not apply.
	printf '%s\n' 'Dir::Etc::Main "/dev/null";' "Dir::Etc::Parts \"$apt_state/conf.d\";" \
		'Dir::Etc::Preferences "/dev/null";' "Dir::Etc::PreferencesParts \"$apt_state/conf.d\";" \
		>"$apt_state/apt.conf"
	export APT_CONFIG=$apt_state/apt.conf
	apt_opts=(-o "Dir::Etc::SourceList=$apt_state/sources/none.list"
		-o "Dir::Etc::SourceParts=$apt_state/sources"
		-o "Dir::State::Lists=$apt_state/lists"
		-o "Dir::Cache=$apt_state/cache"
		-o "Debug::NoLocking=true"
		-o "Acquire::Languages=none"
		-o "Acquire::GzipIndexes=true"
		-o "Acquire::Retries=3"
		-o "Acquire::AllowInsecureRepositories=false"
		-o "Acquire::AllowWeakRepositories=false"
		-o "Acquire::AllowDowngradeToInsecureRepositories=false"
		-o "APT::Get::AllowUnauthenticated=false"
		-o "Acquire::Check-Date=true")
	if [[ $allow_expired -eq 1 ]]; then
		apt_opts+=(-o "Acquire::Check-Valid-Until=false")
	else
		apt_opts+=(-o "Acquire::Check-Valid-Until=true")
	fi
	: >"$apt_state/sources/none.list"
	src_list=$apt_state/sources/memtunnel.sources
}

# publish_lists: make this build's verified index lists the cache's, by
# rename (a concurrent build copies either the old set or the new one).
publish_lists() {
	local tmp
	tmp=$(mktemp -d "$cache/.apt-lists.XXXXXX")
	temps+=("$tmp" "$tmp.old")
	if cp -a "$apt_state/lists/." "$tmp/" && rm -rf "$tmp/partial"; then
		mv -T "$lists_cache" "$tmp.old" 2>/dev/null || true
		mv -T "$tmp" "$lists_cache" || true
		rm -rf "$tmp.old"
	fi
	rm -rf "$tmp"
	# The shared layout of earlier versions.
	rm -rf "$cache/apt" "$cache/apt-mirror"
}

# system_sources: one line per archive pocket the system installs from, as
# URI<TAB>SUITE<TAB>COMPONENTS<TAB>SIGNED-BY, from both the one-line format
# (sources.list, *.list) and deb822 (*.sources). Only the running release's
# own pockets (CODENAME, -updates, -security) are kept: third-party
# repositories rarely publish sources and have no business here. A Signed-By
# that holds an inline key keeps its lines joined by \x1f.
system_sources() {
	local sl='' sp=''
	eval "$(APT_CONFIG=$host_apt_config apt-config shell sl Dir::Etc::sourcelist/f sp Dir::Etc::sourceparts/d)"
	local files=()
	[[ -z $sl || ! -f $sl ]] || files+=("$sl")
	[[ -z $sp ]] || files+=("$sp"*.list "$sp"*.sources)
	[[ ${#files[@]} -gt 0 ]] || return 0
	awk -v codename="$codename" '
	function wanted(s) {
		return s == codename || s == codename "-updates" || s == codename "-security"
	}
	# One record per archive pocket; one-line sources often spread its
	# components over several lines (jammy main, then jammy universe).
	function emit(uri, suite, comps, key,   id, n, c, i) {
		if (!wanted(suite) || comps == "") return
		if (uri !~ /\/$/) uri = uri "/"
		id = uri "\t" suite
		if (!(id in have)) { order[++norder] = id; have[id] = ""; keys[id] = key }
		else if (keys[id] == "") keys[id] = key
		n = split(comps, c, /[ \t]+/)
		for (i = 1; i <= n; i++) {
			if (c[i] == "" || ((id, c[i]) in comp)) continue
			comp[id, c[i]] = 1
			have[id] = have[id] (have[id] == "" ? "" : " ") c[i]
		}
	}
	function flush(   n, u, s, i, j, us, ss) {
		if (types ~ /(^| )deb( |$)|(^| )deb-src( |$)/ && tolower(enabled) != "no") {
			n = split(uris, us, /[ \t]+/)
			split(suites, ss, /[ \t]+/)
			for (i = 1; i <= n; i++)
				for (j = 1; j in ss; j++)
					if (us[i] != "" && ss[j] != "") emit(us[i], ss[j], comps, key)
		}
		types = uris = suites = comps = key = enabled = field = ""
	}
	FNR == 1 { if (deb822) flush(); deb822 = FILENAME ~ /\.sources$/ }
	deb822 {
		if ($0 ~ /^#/) next
		if ($0 ~ /^[ \t]*$/) { flush(); next }
		if ($0 ~ /^[ \t]/) {
			if (field == "signed-by") key = key "\x1f" $0
			next
		}
		i = index($0, ":")
		field = tolower(substr($0, 1, i - 1))
		v = substr($0, i + 1)
		gsub(/^[ \t]+|[ \t]+$/, "", v)
		if (field == "types") types = v
		else if (field == "uris") uris = v
		else if (field == "suites") suites = v
		else if (field == "components") comps = v
		else if (field == "signed-by") key = v
		else if (field == "enabled") enabled = v
		next
	}
	{
		sub(/#.*/, "")
		if ($1 != "deb" && $1 != "deb-src") next
		line = $0
		key = ""
		if (match(line, /\[[^]]*\]/)) {
			opts = substr(line, RSTART + 1, RLENGTH - 2)
			line = substr(line, 1, RSTART - 1) substr(line, RSTART + RLENGTH)
			n = split(opts, o, /[ \t]+/)
			for (i = 1; i <= n; i++)
				if (o[i] ~ /^signed-by=/) key = substr(o[i], 11)
		}
		n = split(line, w, /[ \t]+/)
		k = (w[1] == "") ? 2 : 1
		comps = ""
		for (i = k + 3; i <= n; i++) if (w[i] != "") comps = comps (comps == "" ? "" : " ") w[i]
		emit(w[k + 1], w[k + 2], comps, key)
	}
	END {
		if (deb822) flush()
		for (i = 1; i <= norder; i++)
			printf "%s\t%s\t%s\n", order[i], have[order[i]], keys[order[i]]
	}
	' "${files[@]}"
}

# write_source FILE URI SUITE COMPONENTS SIGNED-BY: one deb-src stanza.
write_source() {
	{
		echo "Types: deb-src"
		echo "URIs: $2"
		echo "Suites: $3"
		echo "Components: $4"
		# An inline key starts on the line after the field name.
		case $5 in
		'') ;;
		$'\x1f'*) printf 'Signed-By:%s\n' "${5//$'\x1f'/$'\n'}" ;;
		*) printf 'Signed-By: %s\n' "${5//$'\x1f'/$'\n'}" ;;
		esac
		echo
	} >>"$1"
}

# source_list: the private deb-src list, from the network archive or its
# mirror copy.
source_list() {
	local pockets p uri suite comps key
	mapfile -t pockets < <(system_sources)
	[[ ${#pockets[@]} -gt 0 ]] ||
		die "no apt source for $codename, $codename-updates or $codename-security in the system's sources"
	if [[ -n $mirror ]]; then
		mirror_list "${pockets[@]}"
		return
	fi
	for p in "${pockets[@]}"; do
		IFS=$'\t' read -r uri suite comps key <<<"$p"
		write_source "$src_list" "$uri" "$suite" "$comps" "$key"
	done
}

# failed_indexes LOG: the InRelease files apt's LOG says it could not get,
# verify or accept, as URI/dists/SUITE/InRelease (mirror: relative to it).
failed_indexes() {
	{
		sed -nE "s/^(Err:[0-9]+ |W: GPG error: |E: The repository ')([^ ']+) ([^ ':]+) InRelease.*/\2 \3/p" "$1" |
			while read -r u s; do printf '%s/dists/%s/InRelease\n' "${u%/}" "$s"; done
		sed -nE 's/^E: Release file for ([^ ]+) is expired.*/\1/p' "$1"
	} | sed "s|^file:${mirror:+$mirror/}||" | sort -u | paste -sd' '
}

# source_update: apt fetches (or reads from the mirror) and verifies the
# signed indexes; then each must be within its Valid-Until.
source_update() {
	local bad
	step "Reading the signed source indexes of $os_name"
	if ! apt-get "${apt_opts[@]}" -q --error-on=any update >"$scratch/apt-update.log" 2>&1; then
		show_log "$scratch/apt-update.log"
		bad=$(failed_indexes "$scratch/apt-update.log")
		[[ -z $bad ]] || die "apt could not verify the signed index $bad (see above); stopping"
		die "apt could not fetch or verify the source indexes (see above); stopping"
	fi
	[[ -n $mirror ]] || publish_lists
	check_valid_until
}

# check_valid_until: every source's InRelease, as apt verified it, is
# within its Valid-Until (against MEMTUNNEL_TEST_NOW in the tests), or
# MEMTUNNEL_ALLOW_EXPIRED_INDEX=1 says to build anyway, loudly.
check_valid_until() {
	local file rel uri f name until t expired=()
	declare -A seen=()
	while IFS=$'\t' read -r file rel uri; do
		# (The InRelease sits beside the indexes it lists, named alike.)
		f=${file%_"$rel"_*}_${rel}_InRelease
		[[ -z ${seen[$f]:-} ]] || continue
		seen[$f]=1
		name=${uri%/}/dists/$rel/InRelease
		[[ -z $mirror ]] || name="${name#file:"$mirror"/} (in the mirror)"
		[[ -f $f ]] || die "apt kept no verified InRelease for $name; stopping"
		until=$(sed -n '/^-----BEGIN PGP SIGNATURE/q; s/^Valid-Until: //p' "$f" | head -n 1)
		[[ -n $until ]] || continue
		t=$(date -d "$until" +%s) || die "unreadable Valid-Until in the InRelease of $name: $until"
		if [[ $now -gt $t ]]; then
			expired+=("$name expired on $until")
		fi
	done < <(apt-get "${apt_opts[@]}" indextargets --format \
		$'$(FILENAME)\t$(RELEASE)\t$(REPO_URI)' 'Identifier: Sources')
	[[ ${#seen[@]} -gt 0 ]] || die "apt lists no signed Sources index; stopping"
	[[ ${#expired[@]} -gt 0 ]] || return 0
	if [[ $allow_expired -eq 1 ]]; then
		warn "warning: MEMTUNNEL_ALLOW_EXPIRED_INDEX=1: building from a signed index past its Valid-Until:" \
			"${expired[@]/#/warning:   }" "warning: its wolfssl may lack the security fixes published since"
		return 0
	fi
	die "signed index past its Valid-Until: ${expired[0]}" "${expired[@]:1}" \
		"(an old copy of the archive can hold a vulnerable wolfssl: make the mirror again," \
		"or set MEMTUNNEL_ALLOW_EXPIRED_INDEX=1 to build from it anyway)"
}

# source_resolve PKG: the source package apt would download, as
# "NAME VERSION DSC-SHA256 DSC-URI", from the verified indexes.
source_resolve() {
	local log=$scratch/resolve-$1.log
	apt-get "${apt_opts[@]}" -q source --print-uris "$1" >"$log" 2>&1 || {
		show_log "$log"
		die "no source package $1 in the apt sources above" \
			"(on Ubuntu, wolfssl is in the universe component)"
	}
	awk '$2 ~ /\.dsc$/ {
		uri = $1; gsub(/\x27/, "", uri)
		name = $2; sub(/\.dsc$/, "", name)
		split(name, nv, "_"); hash = $4; sub(/^SHA256:/, "", hash)
		print nv[1], nv[2], hash, uri; exit
	}' "$log"
}

newest_version() { # reads versions, prints the highest
	local v best=
	while read -r v; do
		if [[ -z $best ]] || dpkg --compare-versions "$v" gt "$best"; then
			best=$v
		fi
	done
	printf '%s\n' "$best"
}

# source_check_newest PKG VERSION: the PKG supplied must be the newest of the
# signed Sources indexes: online VERSION, what apt resolved (a pin could
# lower it); offline the mirror's .dsc. An older one may lack security fixes.
source_check_newest() {
	local pkg=$1 supplied=$2 newest
	newest=$(apt-cache "${apt_opts[@]}" showsrc --only-source "$pkg" 2>/dev/null |
		sed -n 's/^Version: //p' | newest_version)
	[[ -n $newest ]] || die "no $pkg version in the signed Sources indexes"
	if [[ -n $mirror && -z $(find "$mirror" -type f -name "${pkg}_${supplied#*:}.dsc") ]]; then
		supplied=$(find "$mirror" -type f -name "${pkg}_*.dsc" -printf '%f\n' |
			sed "s/^${pkg}_//; s/\\.dsc\$//" | newest_version)
		[[ -n $supplied ]] || die "the mirror carries no $pkg source package; the signed index offers $newest"
		dpkg --compare-versions "$supplied" lt "$newest" ||
			die "the mirror's $pkg $supplied is not in the signed Sources index (its newest: $newest)"
	fi
	if dpkg --compare-versions "$supplied" lt "$newest"; then
		die "$pkg $supplied is older than $newest, the newest the signed Sources index offers; refusing it"
	fi
}

# source_fetch PKG VERSION: download the source package through apt (or from
# the mirror) into $scratch and unpack it; prints the source tree's path.
# Its text is part of the cache keys of the libraries built from it.
source_fetch() {
	local pkg=$1 ver=$2 dl=$scratch/dl-$1
	mkdir -p "$dl"
	[[ $(id -u) -ne 0 ]] || ! id _apt >/dev/null 2>&1 || chown _apt "$dl"
	(cd "$dl" && apt-get "${apt_opts[@]}" -q source --download-only "$pkg=$ver") >"$scratch/fetch-$pkg.log" 2>&1 || {
		show_log "$scratch/fetch-$pkg.log"
		die "apt could not download or verify the $pkg source package (see above)"
	}
	local dsc=("$dl/${pkg}_"*.dsc)
	[[ ${#dsc[@]} -eq 1 ]] || die "expected one $pkg .dsc in $dl"
	# dpkg-source checks every file against the .dsc, whose checksum apt
	# took from the signed index. The .dsc's own OpenPGP signature needs the
	# uploaders' keyring, which build machines do not have: dpkg-source's
	# warning about it is expected.
	(cd "$scratch" && dpkg-source --no-copy -x "${dsc[0]}" "src-$pkg") >"$scratch/unpack-$pkg.log" 2>&1 || {
		show_log "$scratch/unpack-$pkg.log"
		die "dpkg-source rejected ${dsc[0]##*/} (a file does not match the .dsc?)"
	}
	echo "$scratch/src-$pkg"
}
