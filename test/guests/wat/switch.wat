;; switch.wat -- a bytecode interpreter whose dispatch is a chain of leading nested blocks
;; (how compilers lower `switch`), with calls in every case, inside a loop. Exercises the
;; transform's delegated dispatch: the chain must be re-entered correctly on rewind.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; program: opcodes 0..4, terminated by 5
  (data (i32.const 1024) "\00\01\02\03\04\00\02\01\03\04\04\02\00\01\03\05")
  (global $acc (mut i64) (i64.const 7))

  (func $mix (param $x i64) (param $k i64) (result i64)
    local.get $x local.get $k i64.mul i64.const 0x9E3779B97F4A7C15 i64.xor i64.const 13 i64.rotl)
  (func $add (param i64) (result i64) local.get 0 i64.const 11 i64.add)
  (func $twice (param i64) (result i64) local.get 0 local.get 0 call $add i64.add)

  ;; one pass over the program; returns the accumulator
  (func $run (param $seed i64) (result i64)
    (local $pc i32) (local $a i64)
    local.get $seed local.set $a
    block $halt
      loop $next
        block $op4
          block $op3
            block $op2
              block $op1
                block $op0
                  local.get $pc i32.const 1024 i32.add i32.load8_u
                  br_table $op0 $op1 $op2 $op3 $op4 $halt
                end
                ;; op0
                local.get $a i64.const 3 call $mix local.set $a
                br 3 (;$op4 end -> continue;)
              end
              ;; op1
              local.get $a call $add local.set $a
              br 2
            end
            ;; op2: a value live across a nested chain with a call inside
            local.get $a
            block (result i64)
              block
                local.get $a call $twice
                br 1
              end
              i64.const 0
            end
            i64.xor local.set $a
            br 1
          end
          ;; op3
          local.get $a i64.const 5 call $mix local.get $a call $add i64.add local.set $a
          br 0
        end
        ;; op4 and every case continue here
        local.get $pc i32.const 1 i32.add local.set $pc
        br $next
      end
    end
    local.get $a)

  (func $print_hex (param $v i64)
    (local $i i32) (local $d i32)
    loop $l
      local.get $v i64.const 60 local.get $i i64.extend_i32_u i64.const 4 i64.mul i64.sub i64.shr_u
      i32.wrap_i64 i32.const 15 i32.and local.set $d
      local.get $i i32.const 16 i32.add
      local.get $d i32.const 48 i32.add local.get $d i32.const 87 i32.add local.get $d i32.const 10 i32.lt_u select
      i32.store8
      local.get $i i32.const 1 i32.add local.tee $i i32.const 16 i32.lt_u br_if $l
    end
    i32.const 32 i32.const 10 i32.store8
    i32.const 0 i32.const 16 i32.store
    i32.const 4 i32.const 17 i32.store
    i32.const 1 i32.const 0 i32.const 1 i32.const 8 call $fd_write drop)

  (func (export "_start")
    (local $round i32)
    loop $rounds
      global.get $acc local.get $round i64.extend_i32_u i64.add call $run global.set $acc
      local.get $round i32.const 7 i32.rem_u i32.eqz if global.get $acc call $print_hex end
      local.get $round i32.const 1 i32.add local.tee $round i32.const 200 i32.lt_u br_if $rounds
    end
    global.get $acc call $print_hex))
