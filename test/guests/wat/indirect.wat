;; indirect.wat -- call_indirect with several signatures, a table filled by an
;; active element segment, a second table filled at run time,
;; table.get/table.set/table.size/table.grow/table.fill, ref.func, ref.null,
;; ref.is_null and funcref locals.
(module
  (type $unop (func (param i32) (result i32)))
  (type $binop (func (param i32 i32) (result i32)))
  (type $gen64 (func (result i64)))
  (type $fop (func (param f64) (result f64)))

  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))

  (memory (export "memory") 1)
  (data (i32.const 256) "unops=\00")
  (data (i32.const 288) "binops=\00")
  (data (i32.const 320) "gen64=\00")
  (data (i32.const 352) "fop=\00")
  (data (i32.const 384) "table2=\00")
  (data (i32.const 416) "nulls=\00")
  (data (i32.const 448) "grow=\00")
  (data (i32.const 480) " \00")
  (data (i32.const 512) "dispatch=\00")
  (data (i32.const 544) "indirect: done\00")

  ;; table 0: mixed signatures, filled by an active element segment
  (table $t 10 funcref)
  (elem (table $t) (i32.const 0) func
    $inc $dbl $neg          ;; 0..2  $unop
    $add $mul $sub          ;; 3..5  $binop
    $big $small             ;; 6..7  $gen64
    $half)                  ;; 8     $fop
  ;; slot 9 stays null

  ;; table 1: starts empty, filled with table.set / table.fill / ref.func
  (table $t2 2 funcref)
  ;; functions only referenced via ref.func must be declared
  (elem declare func $sq $cube)

  (func $inc (type $unop) (i32.add (local.get 0) (i32.const 1)))
  (func $dbl (type $unop) (i32.shl (local.get 0) (i32.const 1)))
  (func $neg (type $unop) (i32.sub (i32.const 0) (local.get 0)))
  (func $sq (type $unop) (i32.mul (local.get 0) (local.get 0)))
  (func $cube (type $unop) (i32.mul (local.get 0) (i32.mul (local.get 0) (local.get 0))))
  (func $add (type $binop) (i32.add (local.get 0) (local.get 1)))
  (func $mul (type $binop) (i32.mul (local.get 0) (local.get 1)))
  (func $sub (type $binop) (i32.sub (local.get 0) (local.get 1)))
  (func $big (type $gen64) (i64.const 0x7fffffff00000001))
  (func $small (type $gen64) (i64.const -42))
  (func $half (type $fop) (f64.mul (local.get 0) (f64.const 0.5)))

  ;; applies unops 0..2 in sequence, chosen by index
  (func $apply_unops (param $x i32) (result i32)
    (local $i i32)
    (loop $l
      (local.set $x (call_indirect $t (type $unop) (local.get $x) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 3))))
    (local.get $x))

  ;; a funcref local: pick an entry, store it into table 2 slot 0, call it
  (func $via_local (param $which i32) (param $x i32) (result i32)
    (local $f funcref)
    (local.set $f (table.get $t (local.get $which)))
    (table.set $t2 (i32.const 0) (local.get $f))
    (call_indirect $t2 (type $unop) (local.get $x) (i32.const 0)))

  ;; counts null entries in table 1
  (func $count_nulls_t2 (result i32)
    (local $i i32) (local $n i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (table.size $t2)))
        (if (ref.is_null (table.get $t2 (local.get $i)))
          (then (local.set $n (i32.add (local.get $n) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (local.get $n))

  ;; table-driven dispatch over a small program: (op, arg) pairs in memory
  (func $dispatch (result i32)
    (local $pc i32) (local $acc i32)
    (local.set $acc (i32.const 1))
    (loop $l
      (local.set $acc
        (call_indirect $t (type $binop)
          (local.get $acc)
          (i32.load8_u offset=1 (i32.add (i32.const 1024) (local.get $pc)))
          (i32.load8_u (i32.add (i32.const 1024) (local.get $pc)))))
      (local.set $pc (i32.add (local.get $pc) (i32.const 2)))
      (br_if $l (i32.lt_u (local.get $pc) (i32.const 16))))
    (local.get $acc))
  ;; ops 3=add 4=mul 5=sub
  (data (i32.const 1024) "\03\05\04\07\05\02\04\03\03\64\04\0b\05\09\04\02")

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
    (local $i i32) (local $g funcref)
    (call $print_cstr (i32.const 256))
    (call $print_i32 (call $apply_unops (i32.const 5)))     ;; -((5+1)*2) = -12
    (call $sp)
    (call $print_i32 (call $apply_unops (i32.const -100)))
    (call $nl)

    (call $print_cstr (i32.const 288))
    (local.set $i (i32.const 3))
    (loop $b
      (call $print_i32 (call_indirect $t (type $binop) (i32.const 12) (i32.const 5) (local.get $i)))
      (call $sp)
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $b (i32.lt_u (local.get $i) (i32.const 6))))
    (call $nl)

    (call $print_cstr (i32.const 320))
    (call $print_i64 (call_indirect $t (type $gen64) (i32.const 6)))
    (call $sp)
    (call $print_i64 (call_indirect $t (type $gen64) (i32.const 7)))
    (call $nl)

    (call $print_cstr (i32.const 352))
    (call $print_i64 (i64.trunc_sat_f64_s
      (f64.mul (call_indirect $t (type $fop) (f64.const 3.75) (i32.const 8)) (f64.const 1000))))
    (call $nl)

    ;; table 2: null at start, then filled
    (call $print_cstr (i32.const 416))
    (call $print_i32 (call $count_nulls_t2))
    (call $sp)
    (call $print_i32 (ref.is_null (table.get $t (i32.const 9))))
    (call $sp)
    (call $print_i32 (ref.is_null (table.get $t (i32.const 0))))
    (call $sp)
    (local.set $g (ref.null func))
    (call $print_i32 (ref.is_null (local.get $g)))
    (call $sp)
    (local.set $g (ref.func $cube))
    (call $print_i32 (ref.is_null (local.get $g)))
    (call $nl)

    (call $print_cstr (i32.const 384))
    (call $print_i32 (call $via_local (i32.const 1) (i32.const 21)))   ;; dbl
    (call $sp)
    (call $print_i32 (call $via_local (i32.const 2) (i32.const 21)))   ;; neg
    (call $sp)
    (table.set $t2 (i32.const 1) (ref.func $sq))
    (call $print_i32 (call_indirect $t2 (type $unop) (i32.const 9) (i32.const 1)))
    (call $sp)
    (table.set $t2 (i32.const 1) (local.get $g))
    (call $print_i32 (call_indirect $t2 (type $unop) (i32.const 9) (i32.const 1)))
    (call $sp)
    (call $print_i32 (call $count_nulls_t2))
    (call $nl)

    ;; grow table 2 by 3 with a non-null init, then fill one slot with null
    (call $print_cstr (i32.const 448))
    (call $print_i32 (table.grow $t2 (ref.func $sq) (i32.const 3)))    ;; old size 2
    (call $sp)
    (call $print_i32 (table.size $t2))
    (call $sp)
    (table.fill $t2 (i32.const 4) (ref.null func) (i32.const 1))
    (call $print_i32 (call $count_nulls_t2))
    (call $sp)
    (call $print_i32 (call_indirect $t2 (type $unop) (i32.const 12) (i32.const 3)))
    (call $nl)

    (call $print_cstr (i32.const 512))
    (call $print_i32 (call $dispatch))
    (call $nl)
    (call $print_cstr (i32.const 544))
    (call $nl))
)
