;; The module the golden tests instrument (aot/tests/golden.rs): one of each thing the transform
;; treats differently. Its instrumented form under each policy is in the .wat files beside it.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (table 1 funcref)
  (elem (i32.const 0) $sum)
  (type $to_i32 (func (param i32) (result i32)))

  ;; A call-free loop: counted in a local under the counter-loop policy.
  (func $sum (param $n i32) (result i32) (local $acc i32)
    (loop $l
      local.get $acc local.get $n i32.add local.set $acc
      local.get $n i32.const 1 i32.sub local.tee $n
      br_if $l)
    local.get $acc)

  ;; A loop of 8 iterations from a constant: bounded, no site under the counter-loop policy.
  (func $eight (result i32) (local $i i32)
    i32.const 0 local.set $i
    (loop $l
      local.get $i i32.const 1 i32.add local.tee $i
      i32.const 8 i32.lt_s br_if $l)
    local.get $i)

  ;; A leaf that reaches no site: left as it is (unless every function entry is a site).
  (func $double (param i32) (result i32)
    local.get 0 i32.const 2 i32.mul)

  ;; Calls that may unwind (direct and through the table), a value live across them, and an import
  ;; call (always a site).
  (func $main (export "_start") (local $x i32)
    i32.const 7 call $double
    i32.const 100 call $sum
    i32.add
    i32.const 5 i32.const 0 call_indirect (type $to_i32)
    i32.add
    call $eight
    i32.add
    call $proc_exit))
