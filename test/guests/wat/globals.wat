;; globals.wat -- mutable globals of every numeric type and v128 updated in
;; loops; bulk memory (memory.fill/copy/init, data.drop with a passive
;; segment), memory.grow/memory.size, sign-extension ops and non-trapping
;; float-to-int conversions.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))

  (memory (export "memory") 1)
  (data (i32.const 256) "g_i32=\00")
  (data (i32.const 288) "g_i64=\00")
  (data (i32.const 320) "g_f32_milli=\00")
  (data (i32.const 352) "g_f64_milli=\00")
  (data (i32.const 384) "g_v128=\00")
  (data (i32.const 416) "fill_copy=\00")
  (data (i32.const 448) "init=\00")
  (data (i32.const 480) " \00")
  (data (i32.const 512) "grow=\00")
  (data (i32.const 544) "sign_ext=\00")
  (data (i32.const 576) "trunc_sat=\00")
  (data (i32.const 608) "globals: done\00")
  (data (i32.const 640) "const=\00")
  (data $passive "The quick brown fox jumps over the lazy dog")

  (global $g_i32 (mut i32) (i32.const 1))
  (global $g_i64 (mut i64) (i64.const -1))
  (global $g_f32 (mut f32) (f32.const 0.25))
  (global $g_f64 (mut f64) (f64.const 1))
  (global $g_v128 (mut v128) (v128.const i32x4 1 -1 100 0))
  (global $k_i64 i64 (i64.const 0x0123456789abcdef))
  (global $k_f64 f64 (f64.const 2.5))

  (func $update (param $i i32)
    (global.set $g_i32
      (i32.xor (i32.add (global.get $g_i32) (i32.mul (local.get $i) (i32.const 3)))
               (i32.shl (global.get $g_i32) (i32.const 5))))
    (global.set $g_i64
      (i64.add (i64.mul (global.get $g_i64) (i64.const 3)) (i64.extend_i32_u (local.get $i))))
    (global.set $g_f32
      (f32.add (global.get $g_f32) (f32.mul (f32.convert_i32_u (local.get $i)) (f32.const 0.5))))
    (global.set $g_f64
      (f64.add (f64.mul (global.get $g_f64) (f64.const 1.0001)) (f64.const 1)))
    (global.set $g_v128
      (i32x4.add
        (i32x4.mul (global.get $g_v128) (v128.const i32x4 1 3 1 -1))
        (i32x4.splat (local.get $i)))))

  ;; sum of bytes in [p, p+n)
  (func $bsum (param $p i32) (param $n i32) (result i32)
    (local $s i32)
    (block $done
      (loop $l
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $s (i32.add (local.get $s) (i32.load8_u (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l)))
    (local.get $s))

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
    (local $i i32) (local $top i32)
    ;; globals updated in a loop
    (loop $l
      (call $update (local.get $i))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))
    (call $print_cstr (i32.const 256)) (call $print_i32 (global.get $g_i32)) (call $nl)
    (call $print_cstr (i32.const 288)) (call $print_i64 (global.get $g_i64)) (call $nl)
    (call $print_cstr (i32.const 320))
    (call $print_i64 (i64.trunc_sat_f32_s (f32.mul (global.get $g_f32) (f32.const 1000))))
    (call $nl)
    (call $print_cstr (i32.const 352))
    (call $print_i64 (i64.trunc_sat_f64_s (f64.mul (global.get $g_f64) (f64.const 1000))))
    (call $nl)
    (call $print_cstr (i32.const 384))
    (call $print_i32 (i32x4.extract_lane 0 (global.get $g_v128))) (call $sp)
    (call $print_i32 (i32x4.extract_lane 1 (global.get $g_v128))) (call $sp)
    (call $print_i32 (i32x4.extract_lane 2 (global.get $g_v128))) (call $sp)
    (call $print_i32 (i32x4.extract_lane 3 (global.get $g_v128)))
    (call $nl)
    (call $print_cstr (i32.const 640))
    (call $print_i64 (global.get $k_i64)) (call $sp)
    (call $print_i64 (i64.trunc_sat_f64_s (f64.mul (global.get $k_f64) (f64.const 10))))
    (call $nl)

    ;; bulk memory: fill, overlapping copy
    (memory.fill (i32.const 4096) (i32.const 0xab) (i32.const 100))
    (memory.fill (i32.const 4146) (i32.const 0x01) (i32.const 10))
    (memory.copy (i32.const 4120) (i32.const 4096) (i32.const 100))   ;; overlapping, forward
    (memory.copy (i32.const 4000) (i32.const 4100) (i32.const 64))    ;; backward
    (call $print_cstr (i32.const 416))
    (call $print_i32 (call $bsum (i32.const 4096) (i32.const 124))) (call $sp)
    (call $print_i32 (call $bsum (i32.const 4000) (i32.const 64))) (call $sp)
    (call $print_i32 (i32.load8_u (i32.const 4175)))
    (call $nl)

    ;; passive segment: memory.init twice, then data.drop
    (memory.init $passive (i32.const 8192) (i32.const 4) (i32.const 15))   ;; "quick brown fox"
    (memory.init $passive (i32.const 8207) (i32.const 39) (i32.const 4))   ;; " dog"
    (data.drop $passive)
    (i32.store8 (i32.const 8211) (i32.const 0))
    (call $print_cstr (i32.const 448))
    (call $print_cstr (i32.const 8192))
    (call $sp)
    (call $print_i32 (call $bsum (i32.const 8192) (i32.const 19)))
    (call $nl)

    ;; memory.grow / memory.size
    (call $print_cstr (i32.const 512))
    (call $print_i32 (memory.size)) (call $sp)
    (call $print_i32 (memory.grow (i32.const 2))) (call $sp)
    (call $print_i32 (memory.size)) (call $sp)
    (local.set $top (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 8)))
    (i64.store (local.get $top) (i64.const 0x1122334455667788))
    (call $print_i32 (i32.load8_u (i32.add (local.get $top) (i32.const 7)))) (call $sp)
    (memory.fill (i32.const 65536) (i32.const 7) (i32.const 65536))
    (call $print_i32 (call $bsum (i32.const 131000) (i32.const 72))) (call $sp)
    (call $print_i32 (memory.grow (i32.const 70000)))   ;; fails: -1
    (call $sp)
    (call $print_i32 (memory.size))
    (call $nl)

    ;; sign extension
    (call $print_cstr (i32.const 544))
    (call $print_i32 (i32.extend8_s (i32.const 0x180))) (call $sp)
    (call $print_i32 (i32.extend16_s (i32.const 0x12348000))) (call $sp)
    (call $print_i32 (i32.extend8_s (i32.const 0x7f))) (call $sp)
    (call $print_i64 (i64.extend8_s (i64.const 0xff))) (call $sp)
    (call $print_i64 (i64.extend16_s (i64.const 0xffff7fff))) (call $sp)
    (call $print_i64 (i64.extend32_s (i64.const 0x80000000)))
    (call $nl)

    ;; saturating truncation
    (call $print_cstr (i32.const 576))
    (call $print_i32 (i32.trunc_sat_f32_s (f32.const 3e9))) (call $sp)
    (call $print_i32 (i32.trunc_sat_f32_u (f32.const -5))) (call $sp)
    (call $print_i64 (i64.extend_i32_u (i32.trunc_sat_f64_u (f64.const 4e9)))) (call $sp)
    (call $print_i32 (i32.trunc_sat_f64_s (f64.const nan))) (call $sp)
    (call $print_i64 (i64.trunc_sat_f64_s (f64.const -inf))) (call $sp)
    (call $print_i64 (i64.trunc_sat_f32_s (f32.const -1234.99)))
    (call $nl)
    (call $print_cstr (i32.const 608))
    (call $nl))
)
