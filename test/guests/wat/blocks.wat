;; blocks.wat -- structured control flow with block parameters/results,
;; operand-stack values live across calls inside nested blocks, br_if with
;; values, br_table with values, several targets and a default.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))

  (memory (export "memory") 1)
  ;; 0..8 iovec, 8..12 nwritten, 16..48 digit scratch, 256.. strings
  (data (i32.const 256) "block_params=\00")
  (data (i32.const 288) "stack_across_call=\00")
  (data (i32.const 320) "loop_param_sum=\00")
  (data (i32.const 352) "if_params=\00")
  (data (i32.const 384) "br_if_value=\00")
  (data (i32.const 416) "br_table=\00")
  (data (i32.const 448) "state_machine=\00")
  (data (i32.const 480) "deep_stack=\00")
  (data (i32.const 512) "multi_block=\00")
  (data (i32.const 544) " \00")
  (data (i32.const 576) "blocks: done\00")

  (func $sq (param i32) (result i32)
    local.get 0
    local.get 0
    i32.mul)

  ;; calls itself n times, so a callee frame is active while values sit on
  ;; the caller's operand stack
  (func $depth (param $n i32) (result i64)
    (if (result i64) (i32.eqz (local.get $n))
      (then (i64.const 1))
      (else
        (i64.add
          (i64.extend_i32_u (local.get $n))
          (call $depth (i32.sub (local.get $n) (i32.const 1)))))))

  ;; block (param i32 i32) (result i32) and an if with params
  (func $block_params (param $a i32) (param $b i32) (result i32)
    local.get $a
    local.get $b
    block (param i32 i32) (result i32)
      i32.sub
      block (param i32) (result i32)
        i32.const 3
        i32.mul
      end
    end
    ;; stack: (a-b)*3
    local.get $b
    block (param i32 i32) (result i32 i32)
      ;; swap
      call $swap
    end
    i32.sub)

  (func $swap (param i32 i32) (result i32 i32)
    local.get 1
    local.get 0)

  ;; i32.const 7 pushed, then nested blocks containing calls, then i32.add
  (func $stack_across_call (result i32)
    (local $i i32)
    i32.const 7
    block (result i32)
      block (result i32)
        i32.const 5
        call $sq            ;; 25 while 7 is below on the stack
        i32.const 1000
        loop (param i32) (result i32)
          ;; accumulate sq(i) for i in 0..4 on top of 1000
          local.get $i
          call $sq
          i32.add
          local.get $i
          i32.const 1
          i32.add
          local.tee $i
          i32.const 5
          i32.lt_u
          br_if 0
        end                 ;; 1000 + 0+1+4+9+16 = 1030
        i32.add             ;; 1055
      end
      i32.const 1
      i32.add               ;; 1056
    end
    i32.add)                ;; 1063

  ;; loop (param i32 i32) (result i32): acc, n -> sum 1..n
  (func $loop_param (param $n i32) (result i32)
    (local $t i32)
    i32.const 0
    local.get $n
    loop $l (param i32 i32) (result i32)
      local.set $t
      local.get $t
      i32.add
      local.get $t
      i32.const 1
      i32.sub
      local.tee $t
      local.get $t
      br_if $l
      drop
    end)

  (func $if_params (param $x i32) (param $c i32) (result i32)
    local.get $x
    i32.const 3
    local.get $c
    if (param i32 i32) (result i32)
      i32.mul
    else
      i32.sub
    end)

  ;; br_if carrying a value out of a block, and falling through with it
  (func $br_if_value (param $c i32) (result i32)
    block $outer (result i32)
      block $b (result i32)
        i32.const 11
        local.get $c
        br_if $b            ;; taken: 11 leaves $b
        i32.const 1
        i32.add             ;; not taken: 12
        i32.const 100
        local.get $c
        i32.const 2
        i32.eq
        br_if $outer        ;; never true here
        drop
      end
      i32.const 1000
      i32.add
    end)

  ;; br_table with a carried value: 5 labels + default
  (func $classify (param $i i32) (result i32)
    block $d (result i32)
      block $c (result i32)
        block $b (result i32)
          block $a (result i32)
            i32.const 100
            local.get $i
            br_table $a $b $c $a $d $b $d
          end
          i32.const 1
          i32.add
          br $d
        end
        i32.const 2
        i32.mul
        br $d
      end
      i32.const 3
      i32.sub
    end)

  ;; loop + br_table state machine (no carried values), 40 steps
  (func $state_machine (result i32)
    (local $state i32) (local $acc i32) (local $steps i32)
    block $exit
      loop $run
        local.get $steps
        i32.const 40
        i32.ge_u
        br_if $exit
        local.get $steps
        i32.const 1
        i32.add
        local.set $steps
        block $s3
          block $s2
            block $s1
              block $s0
                local.get $state
                br_table $s0 $s1 $s2 $s3
              end
              ;; state 0
              local.get $acc
              i32.const 1
              i32.add
              local.set $acc
              i32.const 1
              local.set $state
              br $run
            end
            ;; state 1
            local.get $acc
            i32.const 2
            i32.mul
            local.set $acc
            local.get $acc
            i32.const 7
            i32.and
            i32.const 2
            i32.add
            i32.const 3
            i32.rem_u
            i32.const 1
            i32.add
            local.set $state    ;; 1..3
            br $run
          end
          ;; state 2
          local.get $acc
          i32.const 5
          i32.sub
          local.set $acc
          i32.const 3
          local.set $state
          br $run
        end
        ;; state 3
        local.get $acc
        i32.const 13
        i32.xor
        local.set $acc
        i32.const 0
        local.set $state
        br $run
      end
    end
    local.get $acc)

  ;; i64 pushed, then if/loop nest with recursive calls, then added
  (func $deep_stack (result i64)
    (local $i i32)
    i64.const 1000000
    i32.const 1
    if (result i64)
      i64.const 0
      loop (param i64) (result i64)
        local.get $i
        call $depth
        i64.add
        local.get $i
        i32.const 10
        i32.add
        local.tee $i
        i32.const 100
        i32.le_u
        br_if 0
      end
    else
      i64.const -1
    end
    i64.add)

  ;; blocks producing two values, br out with two values
  (func $multi_block (param $x i32) (result i32)
    block $b (result i32 i32)
      local.get $x
      i32.const 10
      local.get $x
      i32.const 5
      i32.gt_s
      br_if $b
      drop
      drop
      i32.const 1
      i32.const 2
    end
    i32.mul)

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
  (func $sp (call $print_cstr (i32.const 544)))
  (func $nl
    (i32.store8 (i32.const 16) (i32.const 10))
    (call $write (i32.const 16) (i32.const 1)))

  (func $_start (export "_start")
    (local $i i32)
    (call $print_cstr (i32.const 256))
    (call $print_i32 (call $block_params (i32.const 20) (i32.const 6)))
    (call $sp)
    (call $print_i32 (call $block_params (i32.const -4) (i32.const 9)))
    (call $nl)
    (call $print_cstr (i32.const 288))
    (call $print_i32 (call $stack_across_call))
    (call $nl)
    (call $print_cstr (i32.const 320))
    (call $print_i32 (call $loop_param (i32.const 100)))
    (call $sp)
    (call $print_i32 (call $loop_param (i32.const 1)))
    (call $nl)
    (call $print_cstr (i32.const 352))
    (call $print_i32 (call $if_params (i32.const 14) (i32.const 1)))
    (call $sp)
    (call $print_i32 (call $if_params (i32.const 14) (i32.const 0)))
    (call $nl)
    (call $print_cstr (i32.const 384))
    (call $print_i32 (call $br_if_value (i32.const 1)))
    (call $sp)
    (call $print_i32 (call $br_if_value (i32.const 0)))
    (call $nl)
    (call $print_cstr (i32.const 416))
    (loop $each
      (call $print_i32 (call $classify (local.get $i)))
      (call $sp)
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $each (i32.le_u (local.get $i) (i32.const 7))))
    (call $print_i32 (call $classify (i32.const -1)))
    (call $nl)
    (call $print_cstr (i32.const 448))
    (call $print_i32 (call $state_machine))
    (call $nl)
    (call $print_cstr (i32.const 480))
    (call $print_i64 (call $deep_stack))
    (call $nl)
    (call $print_cstr (i32.const 512))
    (call $print_i32 (call $multi_block (i32.const 9)))
    (call $sp)
    (call $print_i32 (call $multi_block (i32.const 3)))
    (call $nl)
    (call $print_cstr (i32.const 576))
    (call $nl))
)
