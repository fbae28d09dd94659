;; tailcall.wat -- return_call and return_call_indirect.
;; Each chain below is 100000+ calls deep if the calls were not tail calls:
;; far beyond a 512 KiB wasm stack, so an engine that does not implement tail
;; calls properly overflows its stack here.
(module
  (type $state (func (param i32 i64) (result i64)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))

  (memory (export "memory") 1)
  (data (i32.const 256) "countdown=\00")
  (data (i32.const 288) "even_odd=\00")
  (data (i32.const 320) "states=\00")
  (data (i32.const 352) "sig_change=\00")
  (data (i32.const 384) " \00")
  (data (i32.const 416) "tailcall: done\00")
  (data (i32.const 448) "depth_ok=\00")

  (table $states 3 funcref)
  (elem (table $states) (i32.const 0) func $s0 $s1 $s2)

  ;; tail-recursive countdown with an accumulator
  (func $count (param $n i32) (param $acc i64) (result i64)
    (if (i32.eqz (local.get $n))
      (then (return (local.get $acc))))
    (return_call $count
      (i32.sub (local.get $n) (i32.const 1))
      (i64.add (local.get $acc) (i64.extend_i32_u (local.get $n)))))

  ;; mutual tail recursion
  (func $even (param $n i32) (result i32)
    (if (i32.eqz (local.get $n)) (then (return (i32.const 1))))
    (return_call $odd (i32.sub (local.get $n) (i32.const 1))))
  (func $odd (param $n i32) (result i32)
    (if (i32.eqz (local.get $n)) (then (return (i32.const 0))))
    (return_call $even (i32.sub (local.get $n) (i32.const 1))))

  ;; state machine through the table with return_call_indirect;
  ;; $n counts remaining steps, the i64 is a running hash
  (func $s0 (type $state)
    (if (i32.eqz (local.get 0)) (then (return (local.get 1))))
    (return_call_indirect $states (type $state)
      (i32.sub (local.get 0) (i32.const 1))
      (i64.add (i64.mul (local.get 1) (i64.const 31)) (i64.const 1))
      (i32.rem_u (local.get 0) (i32.const 3))))
  (func $s1 (type $state)
    (if (i32.eqz (local.get 0)) (then (return (local.get 1))))
    (return_call_indirect $states (type $state)
      (i32.sub (local.get 0) (i32.const 1))
      (i64.xor (local.get 1) (i64.const 0x9e3779b97f4a7c15))
      (i32.const 2)))
  (func $s2 (type $state)
    (if (i32.eqz (local.get 0)) (then (return (local.get 1))))
    (return_call_indirect $states (type $state)
      (i32.sub (local.get 0) (i32.const 1))
      (i64.rotl (local.get 1) (i64.const 7))
      (i32.and (local.get 0) (i32.const 1))))

  ;; tail calls between functions with different parameter lists
  (func $wide (param $a i64) (param $b i64) (param $c i64) (param $n i32) (result i64)
    (if (i32.eqz (local.get $n))
      (then (return (i64.add (local.get $a) (i64.add (local.get $b) (local.get $c))))))
    (return_call $narrow
      (i64.add (local.get $a) (local.get $c))
      (i32.sub (local.get $n) (i32.const 1))))
  (func $narrow (param $x i64) (param $n i32) (result i64)
    (return_call $wide
      (local.get $x)
      (i64.extend_i32_u (local.get $n))
      (i64.const 3)
      (local.get $n)))

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
  (func $print_i32 (param i32) (call $print_i64 (i64.extend_i32_s (local.get 0))))
  (func $sp (call $print_cstr (i32.const 384)))
  (func $nl
    (i32.store8 (i32.const 16) (i32.const 10))
    (call $write (i32.const 16) (i32.const 1)))

  (func $_start (export "_start")
    (call $print_cstr (i32.const 256))
    (call $print_i64 (call $count (i32.const 100000) (i64.const 0)))
    (call $sp)
    (call $print_i64 (call $count (i32.const 10) (i64.const 1000)))
    (call $nl)
    (call $print_cstr (i32.const 288))
    (call $print_i32 (call $even (i32.const 100000)))
    (call $sp)
    (call $print_i32 (call $even (i32.const 100001)))
    (call $sp)
    (call $print_i32 (call $odd (i32.const 77777)))
    (call $nl)
    (call $print_cstr (i32.const 320))
    (call $print_i64 (call $s0 (i32.const 100000) (i64.const 7)))
    (call $nl)
    (call $print_cstr (i32.const 352))
    (call $print_i64 (call $wide (i64.const 1) (i64.const 2) (i64.const 3) (i32.const 100000)))
    (call $nl)
    (call $print_cstr (i32.const 416))
    (call $nl))
)
