// pgjdbc with autocommit off: transactions, savepoints, a refused mutation, and fetching in
// portions (setFetchSize makes pgjdbc suspend the portal after each portion). Prints one line
// of results for the Rust test (tests/it/jdbc.rs) to compare.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.sql.Statement;

public class Transactions {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/awscc";
        try (Connection c = DriverManager.getConnection(url, "postgres", "")) {
            StringBuilder out = new StringBuilder();
            c.setAutoCommit(false);
            try (Statement s = c.createStatement()) {
                s.setFetchSize(10);
                int rows = 0;
                try (ResultSet r = s.executeQuery("SELECT value FROM generate_series(1, 25)")) {
                    while (r.next()) {
                        rows++;
                    }
                }
                out.append("fetched=").append(rows);
                s.setFetchSize(Integer.MAX_VALUE);
                rows = 0;
                try (ResultSet r = s.executeQuery("SELECT value FROM generate_series(1, 25)")) {
                    while (r.next()) {
                        rows++;
                    }
                }
                out.append(" fetched_max=").append(rows);
                try {
                    s.executeUpdate("DELETE FROM awscc.logs.log_groups WHERE identifier = 'x' AND region = 'us-east-1'");
                    out.append(" delete=accepted");
                } catch (SQLException e) {
                    out.append(" delete=").append(e.getSQLState());
                }
                try {
                    s.executeQuery("SELECT 1");
                    out.append(" after=ok");
                } catch (SQLException e) {
                    out.append(" after=").append(e.getSQLState());
                }
                c.rollback();
                Savepoint sp = c.setSavepoint("sp");
                try {
                    s.executeQuery("SELECT * FROM awscc.ec2.nope");
                } catch (SQLException e) {
                    out.append(" bad=").append(e.getSQLState());
                }
                c.rollback(sp);
                try (ResultSet r = s.executeQuery("SELECT 'ok'")) {
                    r.next();
                    out.append(" recovered=").append(r.getString(1));
                }
                c.commit();
            }
            c.setAutoCommit(true);
            try (Statement s = c.createStatement()) {
                int n = s.executeUpdate("DELETE FROM awscc.logs.log_groups WHERE identifier = 'nothing-here' AND region = 'us-east-1'");
                out.append(" autocommit_delete=").append(n);
            }
            System.out.println(out);
        }
    }
}
