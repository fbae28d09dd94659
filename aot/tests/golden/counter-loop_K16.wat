;; policy: counter-loop K=16 (counter-loop(K=16)+imports)
;; site 0: function 1, LoopHeader { counted: true }, frame slots [0, 1]
;; site 1: function 4, Call { callee: 1 }, frame slots [1]
;; site 2: function 4, CallIndirect { type_id: 0, table: 0 }, frame slots [0, 1]
;; site 3: function 4, Import { func: 0 }, frame slots [1]
(module
  (type $to_i32 (;0;) (func (param i32) (result i32)))
  (type (;1;) (func (param i32)))
  (type (;2;) (func (result i32)))
  (type (;3;) (func))
  (type (;4;) (func (param i32)))
  (type (;5;) (func (param i32 i32)))
  (type (;6;) (func (param i32) (result i32)))
  (type (;7;) (func (param i32 i32) (result i32)))
  (type (;8;) (func (result i32 i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (;0;) (type 1)))
  (import "mvvm" "poll" (func (;1;) (type 4)))
  (import "mvvm" "save_frame" (func (;2;) (type 5)))
  (import "mvvm" "restore_frame" (func (;3;) (type 6)))
  (import "mvvm" "rewind_index" (func (;4;) (type 7)))
  (table (;0;) 1 funcref)
  (memory (;0;) 1 1)
  (global (;0;) (mut i32) i32.const 0)
  (global (;1;) (mut i32) i32.const 0)
  (global (;2;) (mut i32) i32.const 0)
  (global (;3;) (mut i32) i32.const 0)
  (export "_start" (func $main))
  (export "mvvm:state" (global 0))
  (export "mvvm:countdown" (memory 0))
  (export "mvvm:rsite" (global 1))
  (export "mvvm:slot:0" (global 2))
  (export "mvvm:slot:1" (global 3))
  (export "mvvm:table:0" (table 0))
  (export "mvvm:func:1" (func $sum))
  (export "mvvm:func:4" (func $main))
  (elem (;0;) (i32.const 0) func $sum)
  (func $sum (;5;) (type $to_i32) (param $n i32) (result i32)
    (local $acc i32) (local i32 i32)
    global.get 0
    i32.const 2
    i32.eq
    (@metadata.code.branch_hint "\00")
    if $l
      local.get $n
      return_call 9
    end
    block (result i32) ;; label = @1
      i32.const 0
      i32.load
      local.set 2
      loop ;; label = @2
        block ;; label = @3
          local.get 2
          i32.const 1
          i32.sub
          local.tee 2
          i32.const 0
          i32.gt_s
          (@metadata.code.branch_hint "\01")
          br_if 0 (;@3;)
          i32.const 0
          i32.load
          local.tee 2
          i32.const 0
          i32.gt_s
          (@metadata.code.branch_hint "\01")
          br_if 0 (;@3;)
          i32.const 0
          i32.load
          i32.const 0
          i32.add
          local.get $n
          global.set 2
          local.get $acc
          global.set 3
          call 11
          global.get 2
          local.set $n
          global.get 3
          local.set $acc
          i32.const 0
          i32.load
          local.set 2
          global.get 0
          (@metadata.code.branch_hint "\00")
          if ;; label = @4
            local.get $n
            global.set 2
            local.get $acc
            global.set 3
            i32.const 1
            br 3 (;@1;)
          end
        end
        local.get $acc
        local.get $n
        i32.add
        local.set $acc
        local.get $n
        i32.const 1
        i32.sub
        local.tee $n
        br_if 0 (;@2;)
      end
      local.get $acc
      return
    end
    local.set 3
    i32.const 1
    local.get 3
    call 2
    i32.const 1836480109
  )
  (func $eight (;6;) (type 2) (result i32)
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
  (func $double (;7;) (type $to_i32) (param i32) (result i32)
    local.get 0
    i32.const 2
    i32.mul
  )
  (func $main (;8;) (type 3)
    (local $x i32) (local i32 i32 i32 i32)
    global.get 0
    i32.const 2
    i32.eq
    (@metadata.code.branch_hint "\00")
    if ;; label = @1
      return_call 10
    end
    block (result i32) ;; label = @1
      block ;; label = @2
        i32.const 7
        call $double
        i32.const 100
        local.set 2
        local.set 3
        local.get 2
        call $sum
        local.tee 2
        local.get 2
        i32.const 1836480109
        i32.eq
        (@metadata.code.branch_hint "\00")
        if ;; label = @3
          global.get 0
          (@metadata.code.branch_hint "\00")
          if ;; label = @4
            local.get 3
            global.set 3
            i32.const 2
            br 3 (;@1;)
          end
        end
        local.set 2
        local.get 3
        local.get 2
        i32.add
        i32.const 5
        i32.const 0
        local.set 4
        local.set 2
        local.set 3
        local.get 2
        local.get 4
        local.tee 1
        call_indirect (type $to_i32)
        local.tee 2
        local.get 2
        i32.const 1836480109
        i32.eq
        (@metadata.code.branch_hint "\00")
        if ;; label = @3
          global.get 0
          (@metadata.code.branch_hint "\00")
          if ;; label = @4
            local.get 1
            global.set 2
            local.get 3
            global.set 3
            i32.const 3
            br 3 (;@1;)
          end
        end
        local.set 2
        local.get 3
        local.get 2
        i32.add
        call $eight
        i32.add
        local.set 3
        i32.const 0
        i32.load
        i32.const 0
        i32.gt_s
        (@metadata.code.branch_hint "\01")
        br_if 0 (;@2;)
        i32.const 0
        i32.load
        i32.const 3
        i32.add
        call 11
        global.get 0
        (@metadata.code.branch_hint "\00")
        if ;; label = @3
          local.get 3
          global.set 3
          i32.const 4
          br 2 (;@1;)
        end
      end
      local.get 3
      call $proc_exit
      return
    end
    local.set 2
    i32.const 4
    local.get 2
    call 2
  )
  (func (;9;) (type $to_i32) (param i32) (result i32)
    (local i32 i32 i32)
    global.get 0
    i32.const 2
    i32.eq
    (@metadata.code.branch_hint "\00")
    if ;; label = @1
      i32.const 1
      call 3
      global.set 1
      global.get 2
      local.set 0
      global.get 3
      local.set 1
    end
    block (result i32) ;; label = @1
      block ;; label = @2
        global.get 1
        (@metadata.code.branch_hint "\00")
        if ;; label = @3
          block ;; label = @4
            block ;; label = @5
              global.get 1
              i32.const 1
              i32.sub
              br_table 0 (;@5;) 1 (;@4;)
            end
            br 2 (;@2;)
          end
          unreachable
        end
      end
      i32.const 0
      i32.load
      local.set 2
      loop ;; label = @2
        block ;; label = @3
          block ;; label = @4
            local.get 2
            i32.const 1
            i32.sub
            local.tee 2
            i32.const 0
            i32.gt_s
            (@metadata.code.branch_hint "\01")
            br_if 1 (;@3;)
            global.get 1
            (@metadata.code.branch_hint "\00")
            if ;; label = @5
              block ;; label = @6
                block ;; label = @7
                  global.get 1
                  i32.const 1
                  i32.sub
                  br_table 0 (;@7;) 1 (;@6;)
                end
                i32.const 0
                local.set 2
                i32.const 0
                global.set 1
                br 2 (;@4;)
              end
              unreachable
            end
            i32.const 0
            i32.load
            local.tee 2
            i32.const 0
            i32.gt_s
            (@metadata.code.branch_hint "\01")
            br_if 1 (;@3;)
          end
          i32.const 0
          i32.load
          i32.const 0
          i32.add
          call 11
          global.get 0
          (@metadata.code.branch_hint "\00")
          if ;; label = @4
            local.get 0
            global.set 2
            local.get 1
            global.set 3
            i32.const 1
            br 3 (;@1;)
          end
        end
        local.get 1
        local.get 0
        i32.add
        local.set 1
        local.get 0
        i32.const 1
        i32.sub
        local.tee 0
        br_if 0 (;@2;)
      end
      local.get 1
      return
    end
    local.set 3
    i32.const 1
    local.get 3
    call 2
    i32.const 1836480109
  )
  (func (;10;) (type 3)
    (local i32 i32 i32 i32 i32)
    global.get 0
    i32.const 2
    i32.eq
    (@metadata.code.branch_hint "\00")
    if ;; label = @1
      i32.const 4
      call 3
      global.set 1
    end
    block (result i32) ;; label = @1
      block ;; label = @2
        block ;; label = @3
          block (type 8) (result i32 i32) ;; label = @4
            block (result i32) ;; label = @5
              global.get 1
              (@metadata.code.branch_hint "\00")
              if ;; label = @6
                block ;; label = @7
                  block ;; label = @8
                    block ;; label = @9
                      block ;; label = @10
                        global.get 1
                        i32.const 2
                        i32.sub
                        br_table 0 (;@10;) 1 (;@9;) 2 (;@8;) 3 (;@7;)
                      end
                      global.get 3
                      local.set 3
                      i32.const 0
                      global.set 1
                      i32.const 0
                      br 4 (;@5;)
                    end
                    global.get 3
                    local.set 3
                    global.get 2
                    local.set 1
                    i32.const 0
                    global.set 1
                    i32.const 0
                    i32.const 2
                    local.get 1
                    call 4
                    br 4 (;@4;)
                  end
                  global.get 3
                  local.set 3
                  i32.const 0
                  global.set 1
                  br 4 (;@3;)
                end
                unreachable
              end
              i32.const 7
              call $double
              i32.const 100
              local.set 2
              local.set 3
              local.get 2
            end
            call $sum
            local.tee 2
            local.get 2
            i32.const 1836480109
            i32.eq
            (@metadata.code.branch_hint "\00")
            if ;; label = @5
              global.get 0
              (@metadata.code.branch_hint "\00")
              if ;; label = @6
                local.get 3
                global.set 3
                i32.const 2
                br 5 (;@1;)
              end
            end
            local.set 2
            local.get 3
            local.get 2
            i32.add
            i32.const 5
            i32.const 0
            local.set 4
            local.set 2
            local.set 3
            local.get 2
            local.get 4
            local.tee 1
          end
          call_indirect (type $to_i32)
          local.tee 2
          local.get 2
          i32.const 1836480109
          i32.eq
          (@metadata.code.branch_hint "\00")
          if ;; label = @4
            global.get 0
            (@metadata.code.branch_hint "\00")
            if ;; label = @5
              local.get 1
              global.set 2
              local.get 3
              global.set 3
              i32.const 3
              br 4 (;@1;)
            end
          end
          local.set 2
          local.get 3
          local.get 2
          i32.add
          call $eight
          i32.add
          local.set 3
          i32.const 0
          i32.load
          i32.const 0
          i32.gt_s
          (@metadata.code.branch_hint "\01")
          br_if 1 (;@2;)
        end
        i32.const 0
        i32.load
        i32.const 3
        i32.add
        call 11
        global.get 0
        (@metadata.code.branch_hint "\00")
        if ;; label = @3
          local.get 3
          global.set 3
          i32.const 4
          br 2 (;@1;)
        end
      end
      local.get 3
      call $proc_exit
      return
    end
    local.set 2
    i32.const 4
    local.get 2
    call 2
  )
  (func (;11;) (type 4) (param i32)
    local.get 0
    call 1
  )
)
