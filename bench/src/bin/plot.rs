//! Draws the artifact's figures (SVG) from the CSV files its scripts wrote.
//!
//! Usage: `plot OVERHEAD.csv CKPT.csv OUTDIR` (`artifact/plots.sh` passes the files
//! `artifact/overhead.sh` and `artifact/ckpt.sh` wrote). Writes `OUTDIR/overhead.svg` (run-time
//! ratio per workload: counter-loop K=16 and Asyncify, the 1.05 goal as a line) and
//! `OUTDIR/ckpt.svg` (checkpoint and restore latency against touched memory, mvvm and, where it
//! ran, CRIU; log-log).

use plotters::prelude::*;
use std::path::{Path, PathBuf};

type Error = Box<dyn std::error::Error>;

/// A row of `overhead`'s CSV: workload, variant, time ratio.
struct Ratio {
    workload: String,
    variant: String,
    ratio: f64,
}

/// A row of the checkpoint CSV that has numbers.
struct Latency {
    tool: String,
    mib: f64,
    checkpoint_ms: f64,
    restore_ms: f64,
}

fn read_overhead(path: &Path) -> Result<Vec<Ratio>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 6 {
            return Err(format!("{}:{}: expected 10 fields", path.display(), i + 1).into());
        }
        rows.push(Ratio {
            workload: f[0].to_string(),
            variant: f[1].to_string(),
            ratio: f[5]
                .parse()
                .map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?,
        });
    }
    Ok(rows)
}

fn read_ckpt(path: &Path) -> Result<Vec<Latency>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rows = Vec::new();
    for line in text.lines().skip(1) {
        // tool,mib,checkpoint_ms,restore_ms,image_bytes,status (status may be quoted text)
        let f: Vec<&str> = line.splitn(6, ',').collect();
        if f.len() < 5 || f[2].is_empty() || f[3].is_empty() {
            continue; // a tool that could not run: no numbers to draw
        }
        rows.push(Latency {
            tool: f[0].to_string(),
            mib: f[1].parse()?,
            checkpoint_ms: f[2].parse()?,
            restore_ms: f[3].parse()?,
        });
    }
    Ok(rows)
}

fn overhead_svg(rows: &[Ratio], out: &Path) -> Result<(), Error> {
    let mut names: Vec<&str> = Vec::new();
    for r in rows {
        if !names.contains(&r.workload.as_str()) {
            names.push(&r.workload);
        }
    }
    let shown = [("counter K=16", BLUE), ("asyncify", RED)];
    let ymax = rows
        .iter()
        .filter(|r| shown.iter().any(|(v, _)| *v == r.variant))
        .map(|r| r.ratio)
        .fold(1.2f64, f64::max)
        * 1.1;
    let root = SVGBackend::new(out, (1000, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let n = names.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Run time over uninstrumented (median of alternating pairs)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(70)
        .y_label_area_size(50)
        .build_cartesian_2d(-0.5f64..n - 0.5, 0f64..ymax)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(names.len())
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                names[i as usize].to_string()
            } else {
                String::new()
            }
        })
        .y_desc("time ratio")
        .draw()?;
    let width = 0.8 / shown.len() as f64;
    for (j, (variant, color)) in shown.iter().enumerate() {
        let bars = rows
            .iter()
            .filter(|r| r.variant == *variant)
            .filter_map(|r| {
                let i = names.iter().position(|n| *n == r.workload)? as f64;
                let x0 = i - 0.4 + j as f64 * width;
                Some(Rectangle::new(
                    [(x0, 0.0), (x0 + width * 0.9, r.ratio)],
                    color.filled(),
                ))
            });
        chart
            .draw_series(bars)?
            .label(*variant)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .draw_series(LineSeries::new(
            [(-0.5, 1.05), (n - 0.5, 1.05)],
            BLACK.stroke_width(1),
        ))?
        .label("goal 1.05")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 12, y)], BLACK));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}

fn ckpt_svg(rows: &[Latency], out: &Path) -> Result<(), Error> {
    if rows.is_empty() {
        return Err("the checkpoint CSV has no rows with numbers".into());
    }
    let xmax = rows.iter().map(|r| r.mib).fold(1.0, f64::max) * 1.5;
    let ys = rows.iter().flat_map(|r| [r.checkpoint_ms, r.restore_ms]);
    let ymin = ys.clone().fold(f64::INFINITY, f64::min).max(0.01) / 2.0;
    let ymax = ys.fold(1.0, f64::max) * 2.0;
    let root = SVGBackend::new(out, (800, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Checkpoint and restore latency vs touched memory",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d((0.7f64..xmax).log_scale(), (ymin..ymax).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("touched memory (MiB)")
        .y_desc("milliseconds")
        .draw()?;
    let mut tools: Vec<&str> = Vec::new();
    for r in rows {
        if !tools.contains(&r.tool.as_str()) {
            tools.push(&r.tool);
        }
    }
    let palette = [BLUE, RED, GREEN, MAGENTA];
    for (i, tool) in tools.iter().enumerate() {
        let color = palette[i % palette.len()];
        for (what, dashed) in [("checkpoint", false), ("restore", true)] {
            let mut pts: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.tool == *tool)
                .map(|r| {
                    let y = if dashed {
                        r.restore_ms
                    } else {
                        r.checkpoint_ms
                    };
                    (r.mib, y)
                })
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let style = if dashed {
                color.stroke_width(1)
            } else {
                color.stroke_width(3)
            };
            chart
                .draw_series(LineSeries::new(pts.clone(), style))?
                .label(format!("{tool} {what}"))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], style));
            chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

fn main() -> Result<(), Error> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [overhead, ckpt, outdir] = args.as_slice() else {
        eprintln!("plot: expected three arguments, got {}\nusage: plot OVERHEAD.csv CKPT.csv OUTDIR (artifact/plots.sh runs it)", args.len());
        std::process::exit(2)
    };
    std::fs::create_dir_all(outdir)?;
    overhead_svg(&read_overhead(overhead)?, &outdir.join("overhead.svg"))?;
    ckpt_svg(&read_ckpt(ckpt)?, &outdir.join("ckpt.svg"))?;
    println!(
        "wrote {} and {}",
        outdir.join("overhead.svg").display(),
        outdir.join("ckpt.svg").display()
    );
    Ok(())
}
