;; loops.wat -- long-running loop for signal-triggered checkpoints.
;;   loops.wasm        -> 10 chunks x 100000 iterations   (1M, prints 10 progress lines)
;;   loops.wasm long   -> 20 chunks x 10000000 iterations (200M, prints 20 progress lines)
;; Reads its arguments with args_sizes_get/args_get.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get"
    (func $args_get (param i32 i32) (result i32)))

  (memory (export "memory") 1)
  ;; 0..8 iovec, 8..12 nwritten, 16..48 digits, 64/68 argc/argv_buf_size,
  ;; 256.. strings, 1024.. argv pointers (max 256 args), 2048.. argv strings
  (data (i32.const 256) "loops: mode=\00")
  (data (i32.const 288) "long\00")
  (data (i32.const 320) "short\00")
  (data (i32.const 352) "chunk \00")
  (data (i32.const 384) "/\00")
  (data (i32.const 416) " acc=\00")
  (data (i32.const 448) "loops: total=\00")
  (data (i32.const 480) " final=\00")
  (data (i32.const 512) " chunks=\00")

  (global $chunks_done (mut i32) (i32.const 0))
  (global $iterations (mut i64) (i64.const 0))

  ;; 1 if argv[1] == "long"
  (func $is_long (result i32)
    (local $argc i32) (local $p i32)
    (if (call $args_sizes_get (i32.const 64) (i32.const 68)) (then (return (i32.const 0))))
    (local.set $argc (i32.load (i32.const 64)))
    (if (i32.lt_u (local.get $argc) (i32.const 2)) (then (return (i32.const 0))))
    (if (i32.gt_u (local.get $argc) (i32.const 256)) (then (return (i32.const 0))))
    (if (i32.gt_u (i32.load (i32.const 68)) (i32.const 60000)) (then (return (i32.const 0))))
    (if (call $args_get (i32.const 1024) (i32.const 2048)) (then (return (i32.const 0))))
    (local.set $p (i32.load (i32.const 1028)))
    (i32.and
      (i32.eq (i32.load (local.get $p)) (i32.const 0x676e6f6c))   ;; "long" little-endian
      (i32.eqz (i32.load8_u offset=4 (local.get $p)))))

  ;; one chunk of work: n iterations of an LCG-style mix, returns new acc
  (func $chunk (param $acc i64) (param $base i64) (param $n i64) (result i64)
    (local $i i64)
    (loop $l
      (local.set $acc
        (i64.add
          (i64.mul (local.get $acc) (i64.const 6364136223846793005))
          (i64.add (local.get $base) (local.get $i))))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (local.get $n))))
    (global.set $iterations (i64.add (global.get $iterations) (local.get $n)))
    (local.get $acc))

  ;; ---- printing idiom ----
  (func $write (param $p i32) (param $n i32)
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $print_cstr (param $p i32)
    (local $e i32)
    (local.set $e (local.get $p))
    (block $done
      (loop $scan
        (br_if $done (i32.eqz (i32.load8_u (local.get $e))))
        (local.set $e (i32.add (local.get $e) (i32.const 1)))
        (br $scan)))
    (call $write (local.get $p) (i32.sub (local.get $e) (local.get $p))))
  (func $print_i64 (param $v i64)
    (local $p i32) (local $u i64)
    (local.set $p (i32.const 48))
    (local.set $u (local.get $v))
    (if (i64.lt_s (local.get $v) (i64.const 0))
      (then (local.set $u (i64.sub (i64.const 0) (local.get $v)))))
    (loop $digits
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i64.store8 (local.get $p)
        (i64.add (i64.const 48) (i64.rem_u (local.get $u) (i64.const 10))))
      (local.set $u (i64.div_u (local.get $u) (i64.const 10)))
      (br_if $digits (i64.ne (local.get $u) (i64.const 0))))
    (if (i64.lt_s (local.get $v) (i64.const 0))
      (then
        (local.set $p (i32.sub (local.get $p) (i32.const 1)))
        (i32.store8 (local.get $p) (i32.const 45))))
    (call $write (local.get $p) (i32.sub (i32.const 48) (local.get $p))))
  (func $nl
    (i32.store8 (i32.const 16) (i32.const 10))
    (call $write (i32.const 16) (i32.const 1)))

  (func $_start (export "_start")
    (local $long i32) (local $nchunks i32) (local $per i64) (local $k i32) (local $acc i64)
    (local.set $long (call $is_long))
    (if (local.get $long)
      (then (local.set $nchunks (i32.const 20)) (local.set $per (i64.const 10000000)))
      (else (local.set $nchunks (i32.const 10)) (local.set $per (i64.const 100000))))
    (call $print_cstr (i32.const 256))
    (call $print_cstr (select (i32.const 288) (i32.const 320) (local.get $long)))
    (call $nl)
    (local.set $acc (i64.const 1))
    (loop $outer
      (local.set $acc
        (call $chunk (local.get $acc)
          (i64.mul (i64.extend_i32_u (local.get $k)) (local.get $per))
          (local.get $per)))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (global.set $chunks_done (local.get $k))
      (call $print_cstr (i32.const 352))
      (call $print_i64 (i64.extend_i32_u (local.get $k)))
      (call $print_cstr (i32.const 384))
      (call $print_i64 (i64.extend_i32_u (local.get $nchunks)))
      (call $print_cstr (i32.const 416))
      (call $print_i64 (local.get $acc))
      (call $nl)
      (br_if $outer (i32.lt_u (local.get $k) (local.get $nchunks))))
    (call $print_cstr (i32.const 448))
    (call $print_i64 (global.get $iterations))
    (call $print_cstr (i32.const 512))
    (call $print_i64 (i64.extend_i32_u (global.get $chunks_done)))
    (call $print_cstr (i32.const 480))
    (call $print_i64 (local.get $acc))
    (call $nl))
)
