// router_harness: drives one ErrorRouter (rtl/error_router.py, top `error_router`) from a
// layer's golden set and checks every delivered word bit for bit on the fly.
//
// Files (<cosim_dir>/h<ID>_<name>.hex, hexadecimal words):
//
//   load    samples S, the stall level L and its seed, the count C of index-table writes,
//           then C times "pe 0 addr index"
//   e       the S x M output errors, sample-major (played by a cosim_source)
//   route<p> for port p: per sample, the K s words it must deliver, e[index[n, t]] for its
//           neurons n and connections t in order
//
// Every port's `ready` is pseudo-random with the stall level, independently, so the lockstep fork is
// exercised. At the end the counters must read S M received and S K s delivered per port, the
// table fault flag must be clear and the router idle. PASS is always 0; a mismatch's INDEX is
// p K s + (word within the sample).
module router_harness #(
    parameter ID = 0,
    parameter M = 1,
    parameter P = 1,
    parameter K = 1,
    parameter S_CONN = 1,
    parameter ERR_W = 8,
    parameter TP_W = 1,
    parameter TA_W = 1,
    parameter TD_W = 1,
    parameter CNT_W = 32
) (
    input wire clk,
    input wire rst,
    output reg finished,
    output reg failed,
    output reg sample_tick,
    output wire [ERR_W-1:0] errors_payload,
    output wire errors_valid,
    input wire errors_ready,
    input wire [P*ERR_W-1:0] to_pe_payload,
    input wire [P-1:0] to_pe_valid,
    output reg [P-1:0] to_pe_ready,
    input wire busy,
    output reg clear_counters,
    input wire [CNT_W-1:0] received,
    input wire [P*CNT_W-1:0] delivered,
    output reg [TP_W-1:0] table_pe,
    output reg [TA_W-1:0] table_addr,
    output reg [TD_W-1:0] table_data,
    output reg table_en,
    input wire table_fault
);
    `include "cosim_common.vh"

    localparam [31:0] WORDS = K * S_CONN;   // per port and sample

    reg go;
    wire e_exhausted, e_missing;
    wire [31:0] e_taken;
    cosim_source #(.W(ERR_W), .ID(ID), .NAME("e"), .SALT(2)) e_source (
        .clk(clk), .rst(rst), .go(go), .stall(common_stall), .seed(common_seed ^ 32'h5bd1e995),
        .valid(errors_valid), .payload(errors_payload),
        .ready(errors_ready), .taken(e_taken), .exhausted(e_exhausted), .missing(e_missing)
    );

    integer fd_route [0:P-1];
    reg [31:0] port_count [0:P-1];
    localparam [2:0] ST_HEADER = 3'd0, ST_LOAD = 3'd1, ST_CLEAR = 3'd2, ST_RUN = 3'd3,
                     ST_COUNTERS = 3'd4, ST_END = 3'd5;
    reg [2:0] state;
    reg [31:0] samples, load_left, all_ports, ticks;
    reg [31:0] run_start, run_end;
    reg [63:0] t_pe, t_space, t_addr, t_data;
    reg ok;
    integer p;

    initial begin
        finished = 1'b0;
        failed = 1'b0;
        sample_tick = 1'b0;
        to_pe_ready = {P{1'b0}};
        clear_counters = 1'b0;
        table_pe = {TP_W{1'b0}};
        table_addr = {TA_W{1'b0}};
        table_data = {TD_W{1'b0}};
        table_en = 1'b0;
        go = 1'b0;
        state = ST_HEADER;
        samples = 0; load_left = 0; all_ports = 0; ticks = 0; run_start = 0; run_end = 0;
        common_open(ID, "router");
        for (p = 0; p < P; p = p + 1) begin
            $sformat(common_path, "%0s/h%0d_route%0d.hex", common_dir, ID, p);
            fd_route[p] = $fopen(common_path, "r");
            port_count[p] = 0;
        end
    end

    always @(posedge clk) begin
        sample_tick <= 1'b0;
        if (rst) begin
            to_pe_ready <= {P{1'b0}};
            table_en <= 1'b0;
        end else if (!finished) begin
            common_clock();
            for (p = 0; p < P; p = p + 1) begin
                to_pe_ready[p] <= common_random_ready(p);
                if (to_pe_valid[p] && to_pe_ready[p]) begin
                    common_progress();
                    if (port_count[p] >= samples * WORDS) begin
                        common_check(CODE_EXTRA, 0, port_count[p] / WORDS, p * WORDS + port_count[p] % WORDS,
                                     64'd0, 64'd1);
                    end else begin
                        common_read1(fd_route[p], "route", t_data, ok);
                        if (ok) common_check(CODE_ROUTED, 0, port_count[p] / WORDS,
                                             p * WORDS + port_count[p] % WORDS, t_data & mask(ERR_W),
                                             {{(64-ERR_W){1'b0}}, to_pe_payload[p*ERR_W +: ERR_W]});
                    end
                    port_count[p] = port_count[p] + 1;
                end
            end
            all_ports = 0;
            for (p = 0; p < P; p = p + 1)
                if (port_count[p] >= samples * WORDS) all_ports = all_ports + 1;

            case (state)
                ST_HEADER: begin
                    common_read1(fd_load, "load", t_data, ok);
                    samples = t_data[31:0];
                    common_read2(fd_load, "load", t_pe, t_addr, ok);
                    common_set_stall(t_pe, t_addr);
                    common_read1(fd_load, "load", t_data, ok);
                    load_left = t_data[31:0];
                    for (p = 0; p < P; p = p + 1)
                        if (fd_route[p] == 0) common_fail_file("a route file is missing");
                    state <= ST_LOAD;
                end
                ST_LOAD: begin
                    if (load_left != 0) begin
                        common_read4(fd_load, "load", t_pe, t_space, t_addr, t_data, ok);
                        if (ok) begin
                            table_pe <= t_pe[TP_W-1:0];
                            table_addr <= t_addr[TA_W-1:0];
                            table_data <= t_data[TD_W-1:0];
                            table_en <= 1'b1;
                        end
                        load_left = load_left - 1;
                    end else begin
                        table_en <= 1'b0;
                        clear_counters <= 1'b1;
                        state <= ST_CLEAR;
                    end
                end
                ST_CLEAR: begin
                    clear_counters <= 1'b0;
                    go <= 1'b1;
                    run_start = cycles;
                    state <= ST_RUN;
                end
                ST_RUN: begin
                    if (e_taken != ticks * M && e_taken % M == 0) begin
                        ticks = e_taken / M;
                        sample_tick <= 1'b1;
                    end
                    if (errors_valid && errors_ready) common_progress();
                    if (all_ports == P && e_exhausted && !busy) begin
                        run_end = cycles;
                        state <= ST_COUNTERS;
                    end
                end
                ST_COUNTERS: begin
                    common_check(CODE_COUNTER, 0, samples - 1, 0, samples * M, {32'd0, received[31:0]});
                    for (p = 0; p < P; p = p + 1)
                        common_check(CODE_COUNTER, 0, samples - 1, 1 + p, samples * WORDS,
                                     {32'd0, delivered[p*CNT_W +: 32]});
                    common_check(CODE_COUNTER, 0, samples - 1, 1 + P, 64'd0, {63'd0, table_fault});
                    common_check(CODE_COUNTER, 0, samples - 1, 2 + P, 64'd0, {63'd0, busy});
                    common_check(CODE_COUNTER, 0, samples - 1, 3 + P, samples * M, {32'd0, e_taken});
                    state <= ST_END;
                end
                default: begin
                    common_finish(samples, run_start, run_end);
                end
            endcase
            if (e_missing) common_fail_file("e stimulus file is missing");
            common_watchdog();
        end
    end
endmodule
