;; simd.wat -- v128 locals/params/results, v128 values on the operand stack
;; across calls, lane extraction, shuffles, v128 memory ops, plus scalar
;; f32/f64 arithmetic printed through saturating float->int conversions.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))

  (memory (export "memory") 1)
  (data (i32.const 256) "i32x4=\00")
  (data (i32.const 288) "across_call=\00")
  (data (i32.const 320) "f32x4_milli=\00")
  (data (i32.const 352) "i16x8=\00")
  (data (i32.const 384) "shuffle=\00")
  (data (i32.const 416) "dot=\00")
  (data (i32.const 448) "scalar_f=\00")
  (data (i32.const 480) " \00")
  (data (i32.const 512) "bytes=\00")
  (data (i32.const 544) "simd: done\00")
  (data (i32.const 576) "f64x2=\00")

  (global $gv (mut v128) (v128.const i32x4 0 0 0 0))

  (func $mk (param $a i32) (result v128)
    (i32x4.mul (i32x4.splat (local.get $a)) (v128.const i32x4 1 2 3 4)))

  ;; takes and returns v128; leaves a scalar call in the middle
  (func $mix (param $v v128) (param $w v128) (result v128)
    (local $t v128)
    (local.set $t (i32x4.add (local.get $v) (local.get $w)))
    (i32x4.sub (i32x4.shl (local.get $t) (i32.const 1)) (call $mk (i32.const 1))))

  (func $print_i32x4 (param $v v128)
    (call $print_i32 (i32x4.extract_lane 0 (local.get $v))) (call $sp)
    (call $print_i32 (i32x4.extract_lane 1 (local.get $v))) (call $sp)
    (call $print_i32 (i32x4.extract_lane 2 (local.get $v))) (call $sp)
    (call $print_i32 (i32x4.extract_lane 3 (local.get $v))))

  ;; dot product of two i32 arrays of length n (multiple of 4) at p and q
  (func $dot (param $p i32) (param $q i32) (param $n i32) (result i32)
    (local $acc v128) (local $i i32)
    (loop $l
      (local.set $acc
        (i32x4.add (local.get $acc)
          (i32x4.mul
            (v128.load (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2))))
            (v128.load (i32.add (local.get $q) (i32.shl (local.get $i) (i32.const 2)))))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (i32.add
      (i32.add (i32x4.extract_lane 0 (local.get $acc)) (i32x4.extract_lane 1 (local.get $acc)))
      (i32.add (i32x4.extract_lane 2 (local.get $acc)) (i32x4.extract_lane 3 (local.get $acc)))))

  (func $scalar_f (param $x f32) (param $y f64) (result i32)
    (i32.trunc_sat_f64_s
      (f64.mul
        (f64.add
          (f64.promote_f32 (f32.mul (local.get $x) (f32.sqrt (local.get $x))))
          (f64.div (local.get $y) (f64.const 3)))
        (f64.const 1000))))

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
    (local $v v128) (local $w v128) (local $f v128) (local $i i32)
    ;; basic integer lanes
    (local.set $v (v128.const i32x4 10 -20 30 -40))
    (local.set $w (call $mk (i32.const 7)))
    (call $print_cstr (i32.const 256))
    (call $print_i32x4 (call $mix (local.get $v) (local.get $w)))
    (call $nl)

    ;; v128 on the stack across calls, then i32x4.add
    (call $print_cstr (i32.const 288))
    v128.const i32x4 1000 2000 3000 4000
    i32.const 5
    call $mk                        ;; v128 below stays live
    v128.const i32x4 100 100 100 100
    call $mix                       ;; nested call with two more v128s live
    i32x4.add
    global.get $gv
    i32x4.add
    local.tee $f
    call $print_i32x4
    (call $nl)
    (global.set $gv (local.get $f))

    ;; f32x4: (a*b + c) / 2, printed in thousandths
    (local.set $f
      (f32x4.div
        (f32x4.add
          (f32x4.mul (v128.const f32x4 1.5 -2.25 3.125 0.1)
                     (v128.const f32x4 4 8 -0.5 10))
          (v128.const f32x4 0.5 0.25 1 -3))
        (f32x4.splat (f32.const 2))))
    (call $print_cstr (i32.const 320))
    (call $print_i32x4 (i32x4.trunc_sat_f32x4_s
      (f32x4.mul (local.get $f) (f32x4.splat (f32.const 1000)))))
    (call $nl)

    ;; f64x2: sqrt and min/max
    (call $print_cstr (i32.const 576))
    (local.set $f (f64x2.sqrt (v128.const f64x2 2 1e6)))
    (call $print_i64 (i64.trunc_sat_f64_s
      (f64.mul (f64x2.extract_lane 0 (local.get $f)) (f64.const 1e9))))
    (call $sp)
    (call $print_i64 (i64.trunc_sat_f64_s (f64x2.extract_lane 1 (local.get $f))))
    (call $sp)
    (call $print_i64 (i64.trunc_sat_f64_s (f64x2.extract_lane 0
      (f64x2.max (v128.const f64x2 -1.5 0) (v128.const f64x2 -7 0)))))
    (call $nl)

    ;; i16x8 saturating arithmetic
    (call $print_cstr (i32.const 352))
    (local.set $v (i16x8.add_sat_s (v128.const i16x8 30000 -30000 1 2 3 4 5 6)
                                   (v128.const i16x8 10000 -10000 1 1 1 1 1 1)))
    (call $print_i32 (i16x8.extract_lane_s 0 (local.get $v))) (call $sp)
    (call $print_i32 (i16x8.extract_lane_s 1 (local.get $v))) (call $sp)
    (call $print_i32 (i16x8.extract_lane_u 1 (local.get $v))) (call $sp)
    (call $print_i32 (i16x8.extract_lane_s 7 (i16x8.mul (local.get $v) (local.get $v))))
    (call $nl)

    ;; shuffle / swizzle
    (call $print_cstr (i32.const 384))
    (call $print_i32x4
      (i8x16.shuffle 12 13 14 15 8 9 10 11 4 5 6 7 0 1 2 3
        (v128.const i32x4 1 2 3 4) (v128.const i32x4 5 6 7 8)))
    (call $sp)
    (call $print_i32 (i8x16.extract_lane_u 0
      (i8x16.swizzle (v128.const i8x16 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25)
                     (v128.const i8x16 15 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0))))
    (call $nl)

    ;; dot product over memory (arrays at 4096 and 8192, 64 ints each)
    (loop $fill
      (i32.store (i32.add (i32.const 4096) (i32.shl (local.get $i) (i32.const 2)))
                 (i32.sub (local.get $i) (i32.const 20)))
      (i32.store (i32.add (i32.const 8192) (i32.shl (local.get $i) (i32.const 2)))
                 (i32.add (i32.mul (local.get $i) (i32.const 3)) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.const 64))))
    (call $print_cstr (i32.const 416))
    (call $print_i32 (call $dot (i32.const 4096) (i32.const 8192) (i32.const 64)))
    (call $nl)

    ;; byte-wise ops via memory: v128.store then scalar reads
    (v128.store (i32.const 12288)
      (i8x16.add_sat_u (v128.const i8x16 250 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
                       (i8x16.splat (i32.const 10))))
    (call $print_cstr (i32.const 512))
    (call $print_i32 (i32.load8_u (i32.const 12288))) (call $sp)
    (call $print_i32 (i32.load8_u (i32.const 12303))) (call $sp)
    (call $print_i32 (i8x16.bitmask (v128.const i8x16 -1 0 -1 0 0 0 0 0 0 0 0 0 0 0 0 -128))) (call $sp)
    (call $print_i32 (v128.any_true (v128.const i32x4 0 0 0 1))) (call $sp)
    (call $print_i32 (i32x4.all_true (v128.const i32x4 1 1 0 1)))
    (call $nl)

    ;; scalar floats
    (call $print_cstr (i32.const 448))
    (call $print_i32 (call $scalar_f (f32.const 2.25) (f64.const 10)))
    (call $sp)
    (call $print_i32 (call $scalar_f (f32.const 100) (f64.const -1e300)))
    (call $sp)
    (call $print_i32 (i32.trunc_sat_f32_s (f32.div (f32.const 0) (f32.const 0))))
    (call $sp)
    (call $print_i64 (i64.trunc_sat_f64_u (f64.const 1e30)))
    (call $nl)
    (call $print_cstr (i32.const 544))
    (call $nl))
)
