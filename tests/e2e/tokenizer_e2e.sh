#!/usr/bin/env bash
# End-to-end checks of `foundry tokenizer`: encode / decode with each file form (.tiktoken,
# GPT-2's encoder.json + vocab.bpe directory, tokenizer.json), --special and --jsonl, training
# a BPE on .txt and .jsonl files, and one clear error line for bad input.
# Usage: tokenizer_e2e.sh FOUNDRY_BINARY SOURCE_DIR   (data: $FOUNDRY_SHARED_DATA_DIR or SOURCE_DIR/../shared/data)
set -euo pipefail
foundry="$1"
src="$2"
data="${FOUNDRY_SHARED_DATA_DIR:-$src/../shared/data}/tokenizers"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "tokenizer e2e: FAILED: $*" >&2; exit 1; }
expect_ids() {  # expect_ids TOKENIZER TEXT IDS
  local got
  got=$(printf '%s' "$2" | "$foundry" tokenizer encode --tokenizer "$1")
  [ "$got" = "$3" ] || fail "encode '$2' with $1: got $got, expected $3"
}

# 1. Reference ids (vectors.json) through every form.
mkdir -p "$work/gpt2"
cp "$data/gpt2-encoder.json" "$work/gpt2/encoder.json"
cp "$data/gpt2-vocab.bpe" "$work/gpt2/vocab.bpe"
expect_ids "$data/gpt2.tiktoken" "Hello world" "[15496, 995]"
expect_ids "$work/gpt2" "Hello world" "[15496, 995]"
expect_ids "$data/cl100k_base.tiktoken" "Hello world" "[9906, 1917]"
expect_ids "$data/o200k_base.tiktoken" "Hello world" "[13225, 2375]"
expect_ids "$data/llama3.tiktoken" "Hello world" "[9906, 1917]"
expect_ids "$data/gpt2.tiktoken" "" "[]"
got=$(printf 'a<|endoftext|>b' | "$foundry" tokenizer encode --special --tokenizer "$data/gpt2.tiktoken")
[ "$got" = "[64, 50256, 65]" ] || fail "--special: $got"

# 2. decode(encode(x)) == x, byte for byte, on a UTF-8 file with emoji, CJK, marks and runs of space.
{
  cat "$src/README.md"
  printf '日本語 👩‍👩‍👧 e\xcc\x81 \xc2\xa0 \t\t\n\n   trailing   '
} >"$work/text.txt"
for tok in "$data/gpt2.tiktoken" "$work/gpt2" "$data/cl100k_base.tiktoken" "$data/o200k_base.tiktoken" \
           "$data/llama3.tiktoken"; do
  "$foundry" tokenizer encode --tokenizer "$tok" <"$work/text.txt" >"$work/ids.json"
  "$foundry" tokenizer decode --tokenizer "$tok" <"$work/ids.json" >"$work/back.txt"
  cmp -s "$work/text.txt" "$work/back.txt" || fail "round trip with $tok"
done

# 3. --jsonl encodes one document per line, in order.
printf '{"text": "Hello world"}\n{"text": ""}\n{"text": "a b"}\n' |
  "$foundry" tokenizer encode --jsonl --tokenizer "$data/gpt2.tiktoken" >"$work/lines.txt"
printf '[15496, 995]\n[]\n[64, 275]\n' | cmp -s - "$work/lines.txt" || fail "--jsonl: $(cat "$work/lines.txt")"

# 4. Train on .txt + .jsonl, then use the result.
# The README itself (the docs grow with every feature, and the compression check below is about the
# text the tokenizer was trained on).
cp "$src/README.md" "$work/corpus.txt"
awk '{ gsub(/\\/, "&&"); gsub(/"/, "\\\""); printf "{\"text\": \"%s\"}\n", $0 }' "$src/README.md" >"$work/corpus.jsonl"
"$foundry" tokenizer train --input "$work/corpus.txt" "$work/corpus.jsonl" --vocab-size 600 \
  --output "$work/trained" --special-tokens '<|endoftext|>' '<|pad|>' >"$work/train.log"
cat "$work/train.log"
grep -q "trained 600 tokens" "$work/train.log" || fail "train summary: $(cat "$work/train.log")"
[ -f "$work/trained/tokenizer.json" ] || fail "no tokenizer.json written"
"$foundry" tokenizer info --tokenizer "$work/trained" >"$work/info.txt"
grep -q '^vocab_size: 600$' "$work/info.txt" || fail "trained info: $(cat "$work/info.txt")"
grep -q '^eod_id: 598$' "$work/info.txt" || fail "trained eod: $(cat "$work/info.txt")"
"$foundry" tokenizer encode --tokenizer "$work/trained" <"$work/text.txt" >"$work/ids.json"
"$foundry" tokenizer decode --tokenizer "$work/trained/tokenizer.json" <"$work/ids.json" >"$work/back.txt"
cmp -s "$work/text.txt" "$work/back.txt" || fail "round trip with the trained tokenizer"
trained_count=$(tr ',' '\n' <"$work/ids.json" | wc -l)
bytes=$(wc -c <"$work/text.txt")
[ "$trained_count" -lt $((bytes / 2)) ] || fail "trained tokenizer does not compress: $trained_count tokens for $bytes bytes"

# 5. Bad input: non-zero exit and one clear line naming the problem.
expect_error() {  # expect_error PATTERN COMMAND...
  local pattern="$1"
  shift
  if "$@" </dev/null >"$work/out.txt" 2>"$work/err.txt"; then fail "accepted: $*"; fi
  grep -q -- "$pattern" "$work/err.txt" || fail "unclear error for $*: $(cat "$work/err.txt")"
  [ "$(wc -l <"$work/err.txt")" -eq 1 ] || fail "more than one line for $*: $(cat "$work/err.txt")"
}
expect_error "missing.tiktoken' does not exist" "$foundry" tokenizer encode --tokenizer "$work/missing.tiktoken"
expect_error "holds no tokenizer.json" "$foundry" tokenizer encode --tokenizer "$work"
head -c 1000 "$data/gpt2.tiktoken" >"$work/cut.tiktoken"
cp "$data/gpt2.meta.json" "$work/cut.meta.json"
expect_error "cut.tiktoken" "$foundry" tokenizer encode --tokenizer "$work/cut.tiktoken"
expect_error "not a JSON array" sh -c "echo '[1, 2' | '$foundry' tokenizer decode --tokenizer '$data/gpt2.tiktoken'"
expect_error "id 50257 is not a token" sh -c "echo '[1, 50257]' | '$foundry' tokenizer decode --tokenizer '$data/gpt2.tiktoken'"
expect_error "element 1" sh -c "echo '[1, \"x\"]' | '$foundry' tokenizer decode --tokenizer '$data/gpt2.tiktoken'"
expect_error "neither .txt nor .jsonl" "$foundry" tokenizer train --input "$src/README.md" --vocab-size 300 --output "$work/o"
printf '{"text": 3}\n' >"$work/bad.jsonl"
expect_error "bad.jsonl:1" "$foundry" tokenizer train --input "$work/bad.jsonl" --vocab-size 300 --output "$work/o"
expect_error "vocab_size 100" "$foundry" tokenizer train --input "$work/corpus.txt" --vocab-size 100 --output "$work/o"
[ ! -e "$work/o" ] || fail "a failed training wrote its output directory"
echo "tokenizer e2e: all checks passed"
