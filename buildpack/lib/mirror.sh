# shellcheck shell=bash disable=SC2154 # lib/source.sh and its caller set the variables
# Source mirrors: a partial copy of the archive, for offline builds. Sourced
# by buildpack/build-static.sh after common.sh and source.sh; it defines
# functions only.
#
# A mirror (`build-static.sh --make-mirror DIR`, mirror_make) holds the
# signed InRelease and the Sources indexes of every pocket the system
# installs from (the security pocket included), the source files of the
# packages the build uses, plus SHA256SUMS over all of it. A build with
# MEMTUNNEL_SOURCE_MIRROR=DIR first requires every file to be listed in
# SHA256SUMS and to match it; that proves the copy whole, not authentic.
# Authenticity comes from the same chain as online (lib/source.sh): apt
# verifies each InRelease against the system's keyring, the Sources indexes
# against InRelease and every source file against Sources; Valid-Until is
# honoured too, so a mirror of a pocket that has one (Debian's security
# pocket: a week) must be made again before it expires.
#
# It works on lib/source.sh's state (apt_opts, src_list, scratch, mirror)
# and fails, as that file does, through die:
#   mirror_path URI       where a copy of archive URI lives inside a mirror
#   mirror_check DIR      every file in DIR is listed in DIR/SHA256SUMS and
#                         matches it
#   mirror_list POCKET... (source_list's offline half) makes $mirror
#                         absolute, checks it, and writes to $src_list the
#                         mirror's copy of each pocket (system_sources'
#                         lines), each of which it must hold
#   mirror_make DIR PKG=VERSION...
#                         after source_update online: copies the indexes of
#                         every pocket and the source packages named to DIR,
#                         and writes DIR/SHA256SUMS

mirror_path() {
	local p=${1#*://}
	p=${p%/}
	[[ $p != *..* ]] || die "refusing an apt source URI with '..' in it: $1"
	printf '%s\n' "$p"
}

mirror_check() {
	local dir=$1 sums=$1/SHA256SUMS f line hash path bad=0
	[[ -d $dir ]] || die "MEMTUNNEL_SOURCE_MIRROR: $dir is not a directory"
	[[ -f $sums ]] || die "missing checksum list: $sums" \
		"(a mirror is made by buildpack/build-static.sh --make-mirror DIR)"
	declare -A listed=()
	while IFS= read -r line; do
		[[ $line =~ ^([0-9a-f]{64})\ [\ *](.+)$ ]] ||
			die "malformed line in $sums: $line"
		hash=${BASH_REMATCH[1]}
		path=${BASH_REMATCH[2]}
		[[ $path != /* && $path != ../* && $path != */../* ]] ||
			die "$sums names a file outside the mirror: $path"
		listed[$path]=$hash
	done <"$sums"
	[[ ${#listed[@]} -gt 0 ]] || die "empty checksum list: $sums"
	while IFS= read -r -d '' f; do
		f=${f#./}
		[[ $f == SHA256SUMS ]] && continue
		[[ -n ${listed[$f]:-} ]] || die "not listed in $sums: $dir/$f"
	done < <(cd "$dir" && find . -type f -print0)
	for path in "${!listed[@]}"; do
		if [[ ! -f $dir/$path ]]; then
			warn "missing from the mirror: $dir/$path"
			bad=1
			continue
		fi
		hash=$(sha256sum <"$dir/$path")
		hash=${hash%% *}
		if [[ $hash != "${listed[$path]}" ]]; then
			warn "checksum mismatch: $dir/$path" "  want ${listed[$path]}" "  got  $hash"
			bad=1
		fi
	done
	[[ $bad -eq 0 ]] || die "the source mirror $dir does not match $sums; stopping"
}

mirror_list() {
	local given=$mirror p uri suite comps key base c have
	mirror=$(cd "$given" 2>/dev/null && pwd) || die "MEMTUNNEL_SOURCE_MIRROR: $given is not a directory"
	step "Checking the source mirror $mirror"
	mirror_check "$mirror"
	detail "every file matches SHA256SUMS"
	# Every pocket the system installs from must be in the mirror, as
	# online: leaving one out (the security pocket) would roll its fixes
	# back. A pocket is looked up under its own archive's path first; a
	# mirror made where the sources name another mirror host holds the same
	# suite elsewhere, and its InRelease is checked against the same keyring.
	declare -A used=()
	for p in "$@"; do
		IFS=$'\t' read -r uri suite comps key <<<"$p"
		base=$mirror/$(mirror_path "$uri")
		if [[ ! -f $base/dists/$suite/InRelease ]]; then
			base=$(find "$mirror" -path "*/dists/$suite/InRelease" -printf '%h\n' | head -n 1)
			base=${base%/dists/*}
		fi
		[[ -n $base && -f $base/dists/$suite/InRelease ]] ||
			die "the mirror has no signed index for ${uri} $suite (no .../dists/$suite/InRelease)" \
				"(a mirror must carry every pocket this system installs from; make it again with --make-mirror)"
		[[ -z ${used[$base/$suite]:-} ]] || continue
		used[$base/$suite]=1
		# The components whose Sources index the InRelease lists (checked
		# against its signature by apt later) must all be there.
		have=()
		for c in $comps; do
			grep -q " $c/source/Sources" "$base/dists/$suite/InRelease" || continue
			[[ -n $(echo "$base/dists/$suite/$c/source/Sources".*) ]] ||
				die "the mirror lacks the $c Sources index of $suite: ${base#"$mirror"/}/dists/$suite/$c/source/"
			have+=("$c")
		done
		[[ ${#have[@]} -gt 0 ]] || die "the InRelease of $suite in the mirror lists no Sources index of $comps"
		write_source "$src_list" "file:$base" "$suite" "${have[*]}" "$key"
		detail "signed index: ${base#"$mirror"/}/dists/$suite/InRelease"
	done
	# apt's download sandbox (user _apt) may not be able to read a private
	# directory; reading local files needs no sandbox.
	[[ $(id -u) -ne 0 ]] || apt_opts+=(-o "APT::Sandbox::User=root")
}

# mirror_make DIR PKG=VERSION...: copy the InRelease and the Sources indexes
# of every pocket (a build from the mirror needs them all, as online), the
# source packages named, and write SHA256SUMS.
mirror_make() {
	local dir=$1 spec pkg ver target uri suite comp file repo rel idx hash got inrel
	shift
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	while IFS=$'\t' read -r repo suite comp file; do
		rel=$dir/$(mirror_path "$repo")/dists/$suite
		mkdir -p "$rel/$comp/source"
		# InRelease as apt verified it; the Sources index as published
		# (apt keeps its lists recompressed), checked against InRelease.
		inrel=${file%_"$suite"_*}_${suite}_InRelease
		[[ -f $inrel ]] || die "no InRelease for $repo $suite (a mirror needs a signed InRelease)"
		cp "$inrel" "$rel/InRelease"
		idx=$comp/source/Sources.xz
		hash=$(awk -v f="$idx" '/^SHA256:/ { s = 1; next } /^[^ ]/ { s = 0 } s && $3 == f { print $1 }' "$inrel")
		[[ -n $hash ]] || die "$inrel lists no $idx"
		got=
		[[ ! -f $rel/$idx ]] || got=$(sha256sum <"$rel/$idx")
		: >"$scratch/download.log"
		# By hash first: the file the verified InRelease names, even when
		# the archive (or a cache in front of it) has since moved on, or
		# not yet, to another one under the plain name.
		if [[ ${got%% *} != "$hash" ]] && grep -q '^Acquire-By-Hash: yes' "$inrel"; then
			/usr/lib/apt/apt-helper "${apt_opts[@]}" download-file \
				"${repo}dists/$suite/$comp/source/by-hash/SHA256/$hash" "$rel/$idx" "SHA256:$hash" \
				>>"$scratch/download.log" 2>&1 && got=$(sha256sum <"$rel/$idx")
		fi
		if [[ ${got%% *} != "$hash" ]]; then
			/usr/lib/apt/apt-helper "${apt_opts[@]}" download-file "${repo}dists/$suite/$idx" "$rel/$idx" "SHA256:$hash" \
				>>"$scratch/download.log" 2>&1 || { show_log "$scratch/download.log"; die "could not download ${repo}dists/$suite/$idx"; }
		fi
		got=$(sha256sum <"$rel/$idx")
		[[ ${got%% *} == "$hash" ]] || die "checksum mismatch: $rel/$idx"
		detail "signed index: $(mirror_path "$repo") $suite/$comp"
	done < <(apt-get "${apt_opts[@]}" indextargets --format \
		$'$(REPO_URI)\t$(RELEASE)\t$(COMPONENT)\t$(FILENAME)' 'Identifier: Sources')
	for spec in "$@"; do
		pkg=${spec%%=*}
		ver=${spec#*=}
		target=
		while IFS=$'\t' read -r uri suite comp file; do
			if /usr/lib/apt/apt-helper cat-file "$file" |
				awk -v p="$pkg" -v v="$ver" '
					/^Package: / { pk = $2 } /^Version: / { if (pk == p && $2 == v) f = 1 }
					END { exit !f }'; then
				target="$uri"$'\t'"$suite"$'\t'"$comp"
				break
			fi
		done < <(apt-get "${apt_opts[@]}" indextargets --format \
			$'$(REPO_URI)\t$(RELEASE)\t$(COMPONENT)\t$(FILENAME)' 'Identifier: Sources')
		[[ -n $target ]] || die "cannot tell which index lists $pkg $ver"
		IFS=$'\t' read -r repo suite comp <<<"$target"
		# The source files, fetched and verified by apt. (--print-uris
		# leaves out files already downloaded, so it goes first.)
		local dl=$scratch/mirror-$pkg uris=$scratch/mirror-$pkg.uris
		mkdir -p "$dl"
		[[ $(id -u) -ne 0 ]] || ! id _apt >/dev/null 2>&1 || chown _apt "$dl"
		if ! (cd "$dl" && apt-get "${apt_opts[@]}" -q source --print-uris "$pkg=$ver" >"$uris" 2>&1 &&
			apt-get "${apt_opts[@]}" -q source --download-only "$pkg=$ver" >"$scratch/mirror-$pkg.log" 2>&1); then
			show_log "$uris"
			show_log "$scratch/mirror-$pkg.log"
			die "apt could not download the $pkg source package"
		fi
		local n=0
		while read -r uri file; do
			uri=${uri//\'/}
			local sub=${uri#"$repo"}
			sub=${sub%/*}
			mkdir -p "$dir/$(mirror_path "$repo")/$sub"
			cp "$dl/$file" "$dir/$(mirror_path "$repo")/$sub/$file"
			n=$((n + 1))
		done < <(awk '/^\x27/ { print $1, $2 }' "$uris")
		[[ $n -gt 0 ]] || die "apt listed no files for the $pkg source package"
		detail "$pkg $ver ($(mirror_path "$repo") $suite/$comp)"
	done
	(cd "$dir" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort |
		xargs -d '\n' sha256sum >"$scratch/SHA256SUMS")
	mv "$scratch/SHA256SUMS" "$dir/SHA256SUMS"
	step "Wrote the source mirror $dir"
	detail "$(wc -l <"$dir/SHA256SUMS") files listed in $dir/SHA256SUMS"
	detail "build from it with: MEMTUNNEL_SOURCE_MIRROR=$dir"
}
