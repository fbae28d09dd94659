;; p.wat -- the demo guest.
;; Nested counted loops, call_indirect through a funcref table (4 entries),
;; a recursive function, output via fd_write.
;;
;; Function index space (imports first):
;;   0 fd_write (import)   1 proc_exit (import)
;;   2 $fib                3 $mix   <- entered 12 times (3 outer x 4 inner)
;;   4 $op_add  5 $op_sub  6 $op_mul  7 $op_rot   (table entries 0..3)
;;   8 $write   9 $print_cstr  10 $print_i64  11 $nl  12 $_start
(module
  (type $binop (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))

  (memory (export "memory") 1)
  ;; 0..8 iovec, 8..12 nwritten, 16..48 digit scratch, 256.. strings (NUL-terminated)
  (data (i32.const 256) "p: start\00")
  (data (i32.const 288) "outer \00")
  (data (i32.const 320) " inner \00")
  (data (i32.const 352) " mix=\00")
  (data (i32.const 384) "fib(\00")
  (data (i32.const 416) ")=\00")
  (data (i32.const 448) "checksum=\00")
  (data (i32.const 480) "p: done\00")
  (data (i32.const 512) "indirect ops: \00")
  (data (i32.const 544) " \00")

  (table $ops 4 funcref)
  (elem (table $ops) (i32.const 0) func $op_add $op_sub $op_mul $op_rot)

  (global $entries (mut i32) (i32.const 0))

  ;; 2: naive recursive fibonacci
  (func $fib (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else
        (i32.add
          (call $fib (i32.sub (local.get $n) (i32.const 1)))
          (call $fib (i32.sub (local.get $n) (i32.const 2)))))))

  ;; 3: inner loop that folds $seed through the op table, 50 steps
  (func $mix (param $seed i32) (param $sel i32) (result i32)
    (local $i i32) (local $acc i32)
    (global.set $entries (i32.add (global.get $entries) (i32.const 1)))
    (local.set $acc (local.get $seed))
    (loop $steps
      (local.set $acc
        (call_indirect $ops (type $binop)
          (local.get $acc)
          (i32.add (local.get $i) (i32.const 3))
          (i32.rem_u (i32.add (local.get $i) (local.get $sel)) (i32.const 4))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $steps (i32.lt_u (local.get $i) (i32.const 50))))
    (local.get $acc))

  (func $op_add (type $binop) (i32.add (local.get 0) (local.get 1)))
  (func $op_sub (type $binop) (i32.sub (local.get 0) (local.get 1)))
  (func $op_mul (type $binop) (i32.mul (local.get 0) (i32.or (local.get 1) (i32.const 1))))
  (func $op_rot (type $binop) (i32.xor (i32.rotl (local.get 0) (local.get 1)) (i32.const 0x5bd1e995)))

  ;; ---- printing idiom (shared, copied into every guest) ----
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
    (local $outer i32) (local $inner i32) (local $m i32) (local $sum i64) (local $k i32)
    (call $print_cstr (i32.const 256)) (call $nl)
    ;; nested loops: 3 x 4 calls of $mix
    (loop $outer_loop
      (local.set $inner (i32.const 0))
      (loop $inner_loop
        (local.set $m
          (call $mix
            (i32.add (i32.mul (local.get $outer) (i32.const 1000)) (local.get $inner))
            (local.get $inner)))
        (local.set $sum (i64.add (local.get $sum) (i64.extend_i32_u (local.get $m))))
        (call $print_cstr (i32.const 288)) (call $print_i64 (i64.extend_i32_u (local.get $outer)))
        (call $print_cstr (i32.const 320)) (call $print_i64 (i64.extend_i32_u (local.get $inner)))
        (call $print_cstr (i32.const 352)) (call $print_i64 (i64.extend_i32_s (local.get $m)))
        (call $nl)
        (local.set $inner (i32.add (local.get $inner) (i32.const 1)))
        (br_if $inner_loop (i32.lt_u (local.get $inner) (i32.const 4))))
      (local.set $outer (i32.add (local.get $outer) (i32.const 1)))
      (br_if $outer_loop (i32.lt_u (local.get $outer) (i32.const 3))))
    ;; each table entry once
    (call $print_cstr (i32.const 512))
    (local.set $k (i32.const 0))
    (loop $each
      (call $print_i64 (i64.extend_i32_s
        (call_indirect $ops (type $binop) (i32.const 100) (i32.const 7) (local.get $k))))
      (call $print_cstr (i32.const 544))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $each (i32.lt_u (local.get $k) (i32.const 4))))
    (call $nl)
    ;; recursion
    (call $print_cstr (i32.const 384)) (call $print_i64 (i64.const 20))
    (call $print_cstr (i32.const 416)) (call $print_i64 (i64.extend_i32_u (call $fib (i32.const 20))))
    (call $nl)
    (call $print_cstr (i32.const 448))
    (call $print_i64 (i64.add (local.get $sum) (i64.extend_i32_u (global.get $entries))))
    (call $nl)
    (call $print_cstr (i32.const 480)) (call $nl))
)
