;; policy: plain (none (plain))
(module
  (type $to_i32 (;0;) (func (param i32) (result i32)))
  (type (;1;) (func (param i32)))
  (type (;2;) (func (result i32)))
  (type (;3;) (func))
  (type (;4;) (func (param i32)))
  (type (;5;) (func (param i32 i32)))
  (type (;6;) (func (param i32) (result i32)))
  (type (;7;) (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (;0;) (type 1)))
  (table (;0;) 1 funcref)
  (export "_start" (func $main))
  (export "mvvm:table:0" (table 0))
  (export "mvvm:func:1" (func $sum))
  (export "mvvm:func:4" (func $main))
  (elem (;0;) (i32.const 0) func $sum)
  (func $sum (;1;) (type $to_i32) (param $n i32) (result i32)
    (local $acc i32)
    loop $l
      local.get $acc
      local.get $n
      i32.add
      local.set $acc
      local.get $n
      i32.const 1
      i32.sub
      local.tee $n
      br_if $l
    end
    local.get $acc
  )
  (func $eight (;2;) (type 2) (result i32)
    (local $i i32)
    i32.const 0
    local.set $i
    loop $l
      local.get $i
      i32.const 1
      i32.add
      local.tee $i
      i32.const 8
      i32.lt_s
      br_if $l
    end
    local.get $i
  )
  (func $double (;3;) (type $to_i32) (param i32) (result i32)
    local.get 0
    i32.const 2
    i32.mul
  )
  (func $main (;4;) (type 3)
    (local $x i32)
    i32.const 7
    call $double
    i32.const 100
    call $sum
    i32.add
    i32.const 5
    i32.const 0
    call_indirect (type $to_i32)
    i32.add
    call $eight
    i32.add
    call $proc_exit
  )
)
