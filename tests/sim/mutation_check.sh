#!/usr/bin/env bash
# mutation_check.sh - proves the simulator's checkers catch real protocol bugs: for each
# deliberate bug behind -Dmutations=..., build a sluice-sim with that bug and assert that
# the CI seed budget FAILS with a checker violation. An assertion abort
# ("FAIL seed=N (assertion)") does not count: a checker must name what it saw.
# usage: mutation_check.sh [--build BUILD] SOURCE_DIR OUT_DIR SEEDS [MUTATION...]
#        (MUTATION_JOBS: jobs at once, default 2; no MUTATION given: all of them)
#
# With --build (the run target passes its own build dir) a mutant is made from BUILD's
# commands (`ninja -t commands tests/sim/sluice-sim`) rather than by a build of its own:
# the members of libsl_consensus.a whose source or included headers (BUILD's deps log)
# mention SL_MUTATION_<NAME> are compiled again with BUILD's exact command plus that define
# (placed where -Dmutations puts it), the archive is made again with them in place of
# BUILD's, and sluice-sim linked with BUILD's link command; everything goes to
# OUT_DIR/NAME/ (no depfile: nothing is written in BUILD). BUILD's sluice-sim is built
# first when it is not up to date (the run target depends on it, so it always is there).
# A name that is not one of the option's choices, or that nothing mentions, fails at once.
# When this cannot be done (no --build, or BUILD's commands or deps log not as expected,
# or the define also seen by objects outside libsl_consensus.a, which -Dmutations would
# not touch), the mutation falls back to its own build dir configured with
# -Dmutations=NAME (OUT_DIR/NAME/, reused) and says why. With the fast path, mutants are
# made and run MUTATION_JOBS at a time (a fallback among them builds with ninja -j 1);
# without it, one at a time with ninja -j MUTATION_JOBS. Lines come out in list order.
set -u
build=
if [ "${1:-}" = --build ]; then
	build=$2
	shift 2
fi
src=$1
out=$2
seeds=$3
shift 3
maxjobs=${MUTATION_JOBS:-2}
all="prev_term_commit double_vote no_truncate read_no_round long_lease no_vote_refusal
snap_old_conf no_change_guard early_self_count rejoin_votes lww_arrival ml_no_index_check
cad_early ml_rejoin_reuse sync_majority seal_leaky ml_seal_late split_boundary ml_join_no_image"
list=${*:-$all}
mkdir -p "$out"
out=$(cd "$out" && pwd) # absolute: the fast path's commands run in BUILD
sim=tests/sim/sluice-sim
lib=libsl_consensus.a

# in_build M DIR COMMAND...: run COMMAND in BUILD, it and its output in DIR.log; say when
# it fails
in_build() {
	local m=$1 dir=$2
	shift 2
	{
		printf '%q ' "$@"
		echo
	} >>"$dir.log"
	(cd "$build" && "$@") >>"$dir.log" 2>&1 && return 0
	echo "mutation $m: build failed (see $dir.log)"
	return 1
}

# --- the fast path's setup, once: BUILD's link, archive and compile commands, its deps --
fast=
why="no --build given"
link=() arcmd=() members=() objs=() depfiles='' choices=''
declare -A compile deps # object -> its compile command; object -> its deps, one a line
setup_fast() {
	[ -f "$build/build.ninja" ] || { why="$build has no build.ninja"; return 1; }
	if ! ninja -C "$build" -n "$sim" 2>&1 | grep -q '^ninja: no work to do'; then
		ninja -C "$build" -j "$maxjobs" "$sim" >"$out/build-main.log" 2>&1 ||
			{ why="building $sim in $build failed (see $out/build-main.log)"; return 1; }
	fi
	local cmds line obj a i ar arm seen
	# the names -Dmutations accepts (meson_options.txt), as a full build would check them
	choices=" $(meson introspect --buildoptions "$build" | python3 -c 'import json, sys
print(" ".join(next(o["choices"] for o in json.load(sys.stdin) if o["name"] == "mutations")))') " ||
		{ why="no choices of option mutations in $build"; return 1; }
	cmds=$(ninja -C "$build" -t commands "$sim") || { why="ninja -t commands failed"; return 1; }
	# the last command is the target's own: the link
	line=$(printf '%s\n' "$cmds" | tail -n 1)
	eval "link=($line)" 2>/dev/null || { why="link command not understood"; return 1; }
	archive=
	local out_ok=
	for ((i = 0; i < ${#link[@]}; i++)); do
		case ${link[i]} in */"$lib" | "$lib")
			[ -z "$archive" ] || { why="$lib twice in the link"; return 1; }
			archive=${link[i]}
			;;
		esac
		[ "${link[i]}" = -o ] && [ "${link[i + 1]:-}" = "$sim" ] && out_ok=1
	done
	if [ -z "$out_ok" ] || [ -z "$archive" ]; then
		why="no link of $sim with $lib in $build's commands"
		return 1
	fi
	# every object linked: the link's own, and the members of the archives it names that
	# this build makes (meson: "rm -f X && ar ... X MEMBER..."), $lib's in $members
	objs=()
	for a in "${link[@]}"; do
		case $a in
		*.o) objs+=("$a") ;;
		*.a)
			line=$(printf '%s\n' "$cmds" | grep -F -e "rm -f $a && ")
			[ -n "$line" ] || continue # not made here: cannot have seen the define
			[ "$(printf '%s\n' "$line" | grep -c .)" = 1 ] ||
				{ why="two commands making $a in $build"; return 1; }
			eval "ar=(${line#"rm -f $a && "})" 2>/dev/null ||
				{ why="archive command for $a not understood"; return 1; }
			seen=
			arm=()
			for i in "${ar[@]}"; do
				[ -n "$seen" ] && arm+=("$i")
				[ "$i" = "$a" ] && seen=1
			done
			[ ${#arm[@]} -gt 0 ] || { why="no members in $build's command for $a"; return 1; }
			objs+=("${arm[@]}")
			[ "$a" = "$archive" ] && { arcmd=("${ar[@]}"); members=("${arm[@]}"); }
			;;
		esac
	done
	[ ${#members[@]} -gt 0 ] || { why="no command making $archive in $build"; return 1; }
	for a in "${link[@]}" "${arcmd[@]}"; do
		case $a in @*) why="a response file in $build's commands ($a)"; return 1 ;; esac
	done
	for obj in "${members[@]}"; do
		line=$(printf '%s\n' "$cmds" | grep -F -e " -o $obj -c ")
		[ "$(printf '%s\n' "$line" | grep -c .)" = 1 ] ||
			{ why="no compile command for $obj in $build"; return 1; }
		eval "a=($line)" 2>/dev/null || { why="compile command for $obj not understood"; return 1; }
		compile[$obj]=$line
	done
	# what each object was compiled from; -n: the deps log is only read (a dry run neither
	# opens nor recompacts it for writing)
	local dump cur=
	dump=$(ninja -C "$build" -n -t deps "${objs[@]}") || { why="ninja -t deps failed"; return 1; }
	while IFS= read -r line; do
		case $line in
		'    '*) [ -n "$cur" ] && deps[$cur]+="${line#    }"$'\n' ;;
		*': #deps '*'(VALID)') cur=${line%%: #deps *}; deps[$cur]= ;;
		?*) why="deps of ${line%%: *} not valid in $build's deps log: $line"; return 1 ;;
		esac
	done <<<"$dump"
	for obj in "${objs[@]}"; do
		[ -n "${deps[$obj]:-}" ] || { why="no deps for $obj in $build's deps log"; return 1; }
	done
	depfiles=$(for obj in "${objs[@]}"; do printf '%s' "${deps[$obj]}"; done | sort -u)
	return 0
}
if [ -n "$build" ]; then
	if ! build=$(cd "$build" 2>/dev/null && pwd); then
		echo "mutation check: full builds: no build dir $build"
	elif setup_fast; then
		fast=1
	else
		echo "mutation check: full builds: $why"
	fi
fi

# --- one mutant: made from BUILD's commands (prints nothing, returns 0), or 1 to fall back
# (reason in $why), or 2 when the mutation cannot be made at all (message printed) -------
make_fast() {
	local m=$1 dir=$2 def=SL_MUTATION_${1^^}
	local hits=() obj f affected=() others=() a i argv placed
	case $choices in *" $m "*) ;; *)
		echo "mutation $m: unknown: not a choice of option mutations (meson_options.txt)"
		return 2
		;;
	esac
	# the files some linked object was compiled from that mention the define
	mapfile -t hits < <(cd "$build" && printf '%s\n' "$depfiles" | tr '\n' '\0' |
		xargs -0 grep -lwF -e "$def" -- 2>/dev/null)
	for obj in "${objs[@]}"; do
		for f in "${hits[@]}"; do
			if [[ $'\n'${deps[$obj]} == *$'\n'"$f"$'\n'* ]]; then
				case " ${members[*]} " in *" $obj "*) affected+=("$obj") ;; *) others+=("$obj") ;; esac
				break
			fi
		done
	done
	if [ ${#others[@]} -gt 0 ]; then
		why="$def is also seen by ${others[*]}, outside $lib"
		return 1
	fi
	if [ ${#affected[@]} -eq 0 ]; then
		echo "mutation $m: unknown: neither a source of $lib nor a header it includes mentions $def"
		return 2
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	: >"$dir.log"
	for obj in "${affected[@]}"; do
		eval "a=(${compile[$obj]})"
		# the define where -Dmutations puts a target's c_args: before the depfile and -o
		# options; those are dropped (-MD, -MQ X, -MF X) or sent to OUT_DIR (-o X)
		argv=()
		placed=
		for ((i = 0; i < ${#a[@]}; i++)); do
			case ${a[i]} in -MD | -MQ | -MF | -o) [ -n "$placed" ] || argv+=("-D$def"); placed=1 ;; esac
			case ${a[i]} in
			-MD) ;;
			-MQ | -MF) i=$((i + 1)) ;;
			-o) argv+=(-o "$dir/${obj##*/}"); i=$((i + 1)) ;;
			*) argv+=("${a[i]}") ;;
			esac
		done
		in_build "$m" "$dir" "${argv[@]}" || return 2
	done
	# the archive and the link: BUILD's commands with the mutant objects and outputs; the
	# members by absolute path (a thin archive's relative member is found from its own dir)
	argv=()
	placed=
	for a in "${arcmd[@]}"; do
		if [ "$a" = "$archive" ]; then
			a=$dir/$lib
			placed=1
		elif [ -n "$placed" ]; then
			for obj in "${affected[@]}"; do [ "$a" = "$obj" ] && a=$dir/${obj##*/}; done
			case $a in /*) ;; *) a=$build/$a ;; esac
		fi
		argv+=("$a")
	done
	in_build "$m" "$dir" "${argv[@]}" || return 2
	argv=()
	for ((i = 0; i < ${#link[@]}; i++)); do
		a=${link[i]}
		if [ "$a" = "$archive" ]; then
			a=$dir/$lib
		elif [ "$a" = -o ]; then
			argv+=(-o "$dir/sluice-sim")
			i=$((i + 1))
			continue
		fi
		argv+=("$a")
	done
	in_build "$m" "$dir" "${argv[@]}" || return 2
	return 0
}

# --- one mutation: make it, run the CI seeds, say whether a checker caught it ----------
# $1: the mutation; $2: ninja -j of a full build. Returns 0 only when caught.
check() {
	local m=$1 dir=$out/$1 bin rc
	bin=
	if [ -n "$fast" ]; then
		make_fast "$m" "$dir"
		rc=$?
		[ $rc = 2 ] && return 1
		if [ $rc = 0 ]; then
			bin=$dir/sluice-sim
		else
			echo "mutation $m: full build: $why"
		fi
	fi
	if [ -z "$bin" ]; then
		# the full build: its own build dir, configured once with -Dmutations
		if [ ! -f "$dir/build.ninja" ]; then
			rm -rf "$dir" # a fast path's mutant, if any
			if ! meson setup "$dir" "$src" -Dmutations="$m" >"$dir.log" 2>&1; then
				echo "mutation $m: meson setup failed (see $dir.log)"
				return 1
			fi
		fi
		if ! ninja -C "$dir" -j "$2" "$sim" >>"$dir.log" 2>&1; then
			echo "mutation $m: build failed (see $dir.log)"
			return 1
		fi
		bin=$dir/$sim
	fi
	# a bug of the rejoin mode shows only when disks are lost; multileader's bugs need
	# the multileader mode
	extra=
	[ "$m" = rejoin_votes ] && extra=--disk-loss
	case $m in lww_arrival | ml_no_index_check | cad_early | sync_majority) extra="--protocol multileader" ;; esac
	[ "$m" = ml_rejoin_reuse ] && extra="--protocol multileader --disk-loss"
	# a seal bug needs groups that are sealed, through the driver as a node would
	[ "$m" = seal_leaky ] && extra="--driver --seal"
	[ "$m" = ml_seal_late ] && extra="--protocol multileader --seal"
	# a split cut one off needs regions that split (range.h's cut, shared with the node)
	[ "$m" = split_boundary ] && extra="--reconfig"
	# a multileader joiner without the segment's base image needs multileader replica moves
	[ "$m" = ml_join_no_image ] && extra="--reconfig --ml-moves"
	# shellcheck disable=SC2086 # $extra: options, split
	"$bin" --seeds "$seeds" $extra >"$dir.out" 2>&1
	# a checker's line is "FAIL seed=N: t=...: <checker>: <what it saw>"
	line=$(grep -m1 '^FAIL seed=[0-9]*: ' "$dir.out")
	if [ -n "$line" ]; then
		echo "mutation $m: caught: $line"
	elif grep -q '^FAIL seed=[0-9]* (assertion)' "$dir.out"; then
		echo "mutation $m: NOT caught by a checker: an assertion aborted first (see $dir.out)"
		return 1
	else
		echo "mutation $m: NOT caught within $seeds seeds (see $dir.out)"
		return 1
	fi
}

# --- MUTATION_JOBS at a time with the fast path, else one at a time; each one's lines
# kept until those before it are out
workers=1
njobs=$maxjobs
if [ -n "$fast" ] && [ "$maxjobs" -gt 1 ]; then
	workers=$maxjobs
	njobs=1
fi
read -rd '' -a names <<<"$list"
status=0
next=0
# OUT_DIR/.N.res: the lines of the N-th mutation of the list; .N.rc (renamed into place
# once written): its status
flush() {
	while [ $next -lt ${#names[@]} ] && [ -f "$out/.$next.rc" ]; do
		cat "$out/.$next.res"
		[ "$(cat "$out/.$next.rc")" = 0 ] || status=1
		rm -f "$out/.$next.res" "$out/.$next.rc"
		next=$((next + 1))
	done
}
rm -f "$out"/.[0-9]*.res "$out"/.[0-9]*.rc "$out"/.[0-9]*.rc.tmp
for ((n = 0; n < ${#names[@]}; n++)); do
	while [ "$(jobs -pr | wc -l)" -ge "$workers" ]; do
		wait -n
		flush
	done
	(
		check "${names[n]}" "$njobs" >"$out/.$n.res" 2>&1
		echo $? >"$out/.$n.rc.tmp" && mv "$out/.$n.rc.tmp" "$out/.$n.rc"
	) &
done
wait
flush
exit $status
