;; multivalue.wat -- functions returning 2 and 3 values, results of one call
;; feeding the next call directly, if/block/loop with multi-value types.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))

  (memory (export "memory") 1)
  (data (i32.const 256) "divmod=\00")
  (data (i32.const 288) "chain=\00")
  (data (i32.const 320) "three=\00")
  (data (i32.const 352) "if_multi=\00")
  (data (i32.const 384) "fib_pair=\00")
  (data (i32.const 416) "minmax=\00")
  (data (i32.const 448) "rotate3=\00")
  (data (i32.const 480) " \00")
  (data (i32.const 512) "multivalue: done\00")

  ;; (q, r)
  (func $divmod (param $a i32) (param $b i32) (result i32 i32)
    (i32.div_s (local.get $a) (local.get $b))
    (i32.rem_s (local.get $a) (local.get $b)))

  ;; (q, r) -> q*100 + r
  (func $combine (param i32 i32) (result i32)
    (i32.add (i32.mul (local.get 0) (i32.const 100)) (local.get 1)))

  (func $swap64 (param i64 i64) (result i64 i64)
    local.get 1
    local.get 0)

  ;; three values of different types
  (func $three (param $x i32) (result i32 i64 f64)
    (i32.mul (local.get $x) (i32.const 3))
    (i64.mul (i64.extend_i32_s (local.get $x)) (i64.const 10000000000))
    (f64.div (f64.convert_i32_s (local.get $x)) (f64.const 8)))

  ;; consumes (i32 i64 f64) -> i64
  (func $fold3 (param $a i32) (param $b i64) (param $c f64) (result i64)
    (i64.add
      (i64.add (i64.extend_i32_s (local.get $a)) (local.get $b))
      (i64.trunc_sat_f64_s (f64.mul (local.get $c) (f64.const 1000)))))

  ;; rotates three values
  (func $rot3 (param i32 i32 i32) (result i32 i32 i32)
    local.get 1
    local.get 2
    local.get 0)

  (func $encode3 (param i32 i32 i32) (result i32)
    (i32.add
      (i32.add (i32.mul (local.get 0) (i32.const 100)) (i32.mul (local.get 1) (i32.const 10)))
      (local.get 2)))

  ;; if with multi-value result: (min, max)
  (func $minmax (param $a i32) (param $b i32) (result i32 i32)
    (if (result i32 i32) (i32.lt_s (local.get $a) (local.get $b))
      (then (local.get $a) (local.get $b))
      (else (local.get $b) (local.get $a))))

  ;; fibonacci via a (param i64 i64) (result i64 i64) loop
  (func $fib_pair (param $n i32) (result i64 i64)
    i64.const 0
    i64.const 1
    loop $l (param i64 i64) (result i64 i64)
      ;; (a, b) -> (b, a+b)
      call $step
      local.get $n
      i32.const 1
      i32.sub
      local.tee $n
      br_if $l
    end)
  (func $step (param $a i64) (param $b i64) (result i64 i64)
    (local.get $b)
    (i64.add (local.get $a) (local.get $b)))

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
  (func $sp (call $print_cstr (i32.const 480)))
  (func $nl
    (i32.store8 (i32.const 16) (i32.const 10))
    (call $write (i32.const 16) (i32.const 1)))

  (func $_start (export "_start")
    (local $q i32) (local $r i32) (local $x i64) (local $y i64)
    ;; divmod results into locals
    (call $divmod (i32.const 1234) (i32.const 100))
    (local.set $r)
    (local.set $q)
    (call $print_cstr (i32.const 256))
    (call $print_i32 (local.get $q)) (call $sp) (call $print_i32 (local.get $r))
    (call $sp)
    (call $divmod (i32.const -47) (i32.const 5))
    (local.set $r)
    (call $print_i32)            ;; q = -9 straight from the stack
    (call $sp)
    (call $print_i32 (local.get $r))
    (call $nl)
    ;; results feed further calls directly
    (call $print_cstr (i32.const 288))
    (call $print_i32 (call $combine (call $divmod (i32.const 98765) (i32.const 321))))
    (call $sp)
    (call $swap64 (call $swap64 (i64.const 1) (i64.const 2)))
    (local.set $y) (local.set $x)
    (call $print_i64 (i64.sub (i64.mul (local.get $x) (i64.const 10)) (local.get $y)))
    (call $nl)
    (call $print_cstr (i32.const 320))
    (call $print_i64 (call $fold3 (call $three (i32.const 7))))
    (call $sp)
    (call $print_i64 (call $fold3 (call $three (i32.const -3))))
    (call $nl)
    (call $print_cstr (i32.const 352))
    (call $print_i32 (call $combine (call $minmax (i32.const 42) (i32.const 17))))
    (call $sp)
    (call $print_i32 (call $combine (call $minmax (i32.const -5) (i32.const 8))))
    (call $nl)
    (call $print_cstr (i32.const 384))
    (call $fib_pair (i32.const 50))
    (local.set $y) (local.set $x)
    (call $print_i64 (local.get $x)) (call $sp) (call $print_i64 (local.get $y))
    (call $nl)
    (call $print_cstr (i32.const 416))
    (call $minmax (i32.const 3) (i32.const -3))
    (call $print_i32 (i32.sub))
    (call $nl)
    (call $print_cstr (i32.const 448))
    (call $print_i32 (call $encode3 (call $rot3 (i32.const 1) (i32.const 2) (i32.const 3))))
    (call $sp)
    (call $print_i32 (call $encode3 (call $rot3 (call $rot3 (i32.const 1) (i32.const 2) (i32.const 3)))))
    (call $nl)
    (call $print_cstr (i32.const 512))
    (call $nl))
)
