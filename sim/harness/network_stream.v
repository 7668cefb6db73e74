// network_stream: plays the samples and labels of a network run from files and records the
// predictions, so that a simulation of SSDFANetwork runs whole epochs without the testbench
// touching the design once per clock (docs/network.md, "Co-simulation").
//
// Files (paths from plusargs), hexadecimal words separated by white space:
//   +network_x=PATH            the raw features, sample after sample (x stream)
//   +network_labels=PATH       one class per sample (label stream)
//   +network_predictions=PATH  written: one prediction payload per line, in order
//
// Each source presents its next word with `valid` held high until the sink takes it, as
// amaranth.lib.stream requires; the prediction sink is always ready. A missing input file
// raises `missing`.
module network_stream #(
    parameter X_W = 16,   // activation word
    parameter L_W = 4,    // class index
    parameter P_W = 5     // prediction payload: index, then the `correct` bit on top
) (
    input wire clk,
    input wire rst,
    output reg x_valid,
    output reg [X_W-1:0] x_payload,
    input wire x_ready,
    output reg label_valid,
    output reg [L_W-1:0] label_payload,
    input wire label_ready,
    input wire prediction_valid,
    input wire [P_W-1:0] prediction_payload,
    output wire prediction_ready,
    output reg [31:0] x_taken,
    output reg [31:0] labels_taken,
    output reg [31:0] predictions_taken,
    output reg missing
);
    reg [8*1024-1:0] path;
    integer fd_x, fd_labels, fd_predictions;
    integer rc;
    reg [63:0] word;

    assign prediction_ready = 1'b1;

    initial begin
        x_valid = 1'b0;
        x_payload = {X_W{1'b0}};
        label_valid = 1'b0;
        label_payload = {L_W{1'b0}};
        x_taken = 32'd0;
        labels_taken = 32'd0;
        predictions_taken = 32'd0;
        missing = 1'b0;
        fd_x = 0;
        fd_labels = 0;
        fd_predictions = 0;
        if ($value$plusargs("network_x=%s", path)) fd_x = $fopen(path, "r");
        if ($value$plusargs("network_labels=%s", path)) fd_labels = $fopen(path, "r");
        if ($value$plusargs("network_predictions=%s", path)) fd_predictions = $fopen(path, "w");
        if (fd_x == 0 || fd_labels == 0 || fd_predictions == 0) missing = 1'b1;
    end

    always @(posedge clk) begin
        if (rst) begin
            x_valid <= 1'b0;
            label_valid <= 1'b0;
        end else if (!missing) begin
            if (!x_valid || x_ready) begin
                if (x_valid) x_taken <= x_taken + 32'd1;
                rc = $fscanf(fd_x, "%h", word);
                x_valid <= (rc == 1);
                if (rc == 1) x_payload <= word[X_W-1:0];
            end
            if (!label_valid || label_ready) begin
                if (label_valid) labels_taken <= labels_taken + 32'd1;
                rc = $fscanf(fd_labels, "%h", word);
                label_valid <= (rc == 1);
                if (rc == 1) label_payload <= word[L_W-1:0];
            end
            if (prediction_valid) begin
                predictions_taken <= predictions_taken + 32'd1;
                $fwrite(fd_predictions, "%h\n", prediction_payload);
                $fflush(fd_predictions);
            end
        end
    end
endmodule
